"""``python -m benchmarks.chaos``: see ``benchmarks.chaos.runner``."""

from benchmarks.chaos.command import main

main()
