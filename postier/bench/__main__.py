"""``python -m postier.bench``: see ``postier.bench.command``."""

from postier.bench.command import main

main()
