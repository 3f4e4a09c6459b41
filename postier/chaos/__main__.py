"""``python -m postier.chaos``: see ``postier.chaos.runner``."""

from postier.chaos.command import main

main()
