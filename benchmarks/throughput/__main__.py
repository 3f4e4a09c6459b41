"""``python -m benchmarks.throughput``: see ``benchmarks.throughput.command``."""

from benchmarks.throughput.command import main

main()
