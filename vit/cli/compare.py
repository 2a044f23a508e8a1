"""`python tools/compare.py RUN_DIR [RUN_DIR ...] [--output DIR]`: overlay runs' curves, and
list the final numbers and the config keys on which the runs differ."""

import argparse
import datetime
import sys

from . import run_cli


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vit-compare",
                                     description="Compare training runs: curves and final numbers.")
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="run folders (output/<run>)")
    parser.add_argument("--output", default=None,
                        help="folder for comparison.png and comparison.csv "
                             "(default: output/compare-<date-time>)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from ..engine.compare import compare_runs, format_differences, format_rows

    output = args.output or f"output/compare-{datetime.datetime.now():%Y%m%d-%H%M%S}"
    result = compare_runs(args.runs, output)
    print(format_rows(result["rows"]))
    print("\n" + format_differences(result["differences"], result["names"]))
    print(f"\nfigure: {result['figure']}\ntable:  {result['table']}")
    return 0


def cli() -> int:
    return run_cli(main)


if __name__ == "__main__":
    sys.exit(cli())
