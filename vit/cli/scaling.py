"""`vit-scaling` / `python tools/scaling.py`: the data-scaling experiment, a ViT against a CNN
of similar size on growing shares of the training split (docs/scaling.md)."""

import argparse
import sys
from pathlib import Path

from . import add_config_args, config_from_args, run_cli, setup_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vit-scaling", description=__doc__.splitlines()[0])
    add_config_args(parser)
    parser.add_argument("--models", nargs="+", metavar="NAME",
                        help="the config's model and ResNet20 unless given")
    parser.add_argument("--fractions", nargs="+", type=float, metavar="SHARE",
                        help="shares of the training split (default 0.1 0.3 1.0)")
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds per point (default 1 2)")
    parser.add_argument("--epochs", type=int,
                        help="passes over its training images of every run (default 30)")
    parser.add_argument("--min-steps", type=int,
                        help="but at least this many optimizer steps (default 200)")
    parser.add_argument("--output", default="output/scaling",
                        help="folder of the runs, scaling.json and scaling.png")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    from ..engine.scaling import default_plan, format_results, run_scaling

    config = config_from_args(args)
    plan = default_plan(args.models or [config.model.name, "ResNet20"], args.fractions,
                        args.seeds, args.epochs, args.min_steps)

    def progress(stage, done, total):
        print(f"[{done}/{total}] {stage}", file=sys.stderr, flush=True)

    result = run_scaling(config, plan, Path(args.output), progress)
    print(format_results(result["results"]))
    print(f"\nfigure: {result['figure']}\nnumbers: {result['json']}")
    print(f"curves of any two points: python tools/compare.py {args.output}/<run> "
          f"{args.output}/<run>")
    return 0


def cli() -> int:
    return run_cli(main)


if __name__ == "__main__":
    sys.exit(cli())
