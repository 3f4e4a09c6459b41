"""``python -m benchmarks.scale`` (``make bench-scale``): see ``benchmarks.scale``."""

from __future__ import annotations

import argparse
from pathlib import Path

from rich.console import Console

from benchmarks.scale import DEFAULT_PG_URL, DEFAULT_SIZES, ScaleOptions, print_report, run_scale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale", description=__doc__)
    parser.add_argument(
        "--sizes",
        default=",".join(str(s) for s in DEFAULT_SIZES),
        help="messages per ledger, comma-separated (default: 100000,1000000,5000000)",
    )
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--workdir", type=Path, default=Path("var/bench-scale"))
    parser.add_argument("--pg-url", default=DEFAULT_PG_URL, help="a server's maintenance database")
    parser.add_argument("--repeat", type=int, default=15, help="timed runs of each query")
    parser.add_argument(
        "--write-seconds", type=float, default=10.0, help="SQLite write check length (0: none)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the ledgers and reuse them")
    parser.add_argument("--query", action="append", default=[], help="only this query (repeatable)")
    args = parser.parse_args(argv)
    options = ScaleOptions(
        sizes=tuple(int(part) for part in args.sizes.split(",")),
        backends=tuple(part.strip() for part in args.backends.split(",")),
        workdir=args.workdir,
        pg_url=args.pg_url,
        repeat=args.repeat,
        write_seconds=args.write_seconds,
        keep=args.keep,
        queries=tuple(args.query),
    )
    console = Console(width=None if Console().is_terminal else 200)
    report = run_scale(options, console)
    print_report(report, console)
    path = options.workdir / "report.json"
    report.write(path)
    console.print(f"report: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
