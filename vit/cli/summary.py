"""`vit-summary` / `python tools/summary.py`: print a model's `paddle.summary` table.

With no arguments it prints the architecture contract, ViT_base_patch16_384 on (1, 3, 384, 384),
and nothing else on stdout.
"""

import argparse
import sys
from pathlib import Path

from . import add_config_args, config_from_args, run_cli
from ..errors import VitError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vit-summary", description="Print the paddle.summary table of a ViT model.")
    parser.add_argument("-m", "--model", default=None,
                        help="registered model name (default: ViT_base_patch16_384, or the "
                             "config's model with -c)")
    parser.add_argument("--img-size", type=int, nargs="+", metavar="SIZE",
                        help="input size: one value for a square, or HEIGHT WIDTH")
    parser.add_argument("--num-classes", type=int, help="classes of the head (0: no head)")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--flops", action="store_true",
                        help="print the FLOP count (multiply-adds) under the table")
    parser.add_argument("--check", metavar="FILE",
                        help="compare with a saved table; exit 1 with a diff when they differ")
    parser.add_argument("--list", action="store_true", help="list the registered models")
    add_config_args(parser)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    from ..models import (count_flops, create_model, input_size, list_models, summarize,
                          table_diff)

    if args.list:
        print("\n".join(list_models()))
        return 0
    name, overrides = _model_choice(args)
    if args.img_size:
        if len(args.img_size) > 2:
            raise VitError(f"--img-size takes one or two numbers, got {len(args.img_size)}",
                           "give SIZE or HEIGHT WIDTH")
        overrides["img_size"] = (args.img_size[0] if len(args.img_size) == 1
                                 else tuple(args.img_size))
    if args.num_classes is not None:
        overrides["num_classes"] = args.num_classes
    if args.batch_size < 1:
        raise VitError(f"--batch-size must be at least 1, got {args.batch_size}")

    table = summarize(name, batch_size=args.batch_size, **overrides)
    sys.stdout.write(table)
    if args.flops:
        model = create_model(name, **overrides)
        print(count_flops(model, (args.batch_size, *input_size(model))).format())
    if args.check:
        path = Path(args.check)
        if not path.is_file():
            raise VitError(f"--check file '{path}' does not exist", "give a saved summary table")
        diff = table_diff(table, path.read_text(encoding="utf-8"), expected_name=str(path))
        if diff:
            print(f"the table differs from {path}:\n{diff}", file=sys.stderr)
            return 1
        print(f"the table matches {path} line for line", file=sys.stderr)
    return 0


def _model_choice(args):
    """The model name and constructor overrides from -m, or from the config with -c."""
    if args.config or args.override:
        from ..data.sources import count_classes
        from ..engine.builders import model_kwargs_from_config

        config = config_from_args(args)
        name = args.model or config.model.name
        return name, model_kwargs_from_config(config, count_classes(config.data))
    return args.model or "ViT_base_patch16_384", {}


def cli() -> int:
    return run_cli(main)


if __name__ == "__main__":
    sys.exit(cli())
