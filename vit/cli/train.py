"""`vit-train` / `python tools/train.py -c CONFIG [-o section.key=value ...] [--stats-only]`."""

import argparse
import sys

from . import add_config_args, config_from_args, run_cli, setup_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vit-train", description="Train a ViT, or only describe its data set.")
    add_config_args(parser)
    parser.add_argument("--stats-only", action="store_true",
                        help="write the dataset report (stats.json, figures) and stop")
    parser.add_argument("--pretrained", metavar="NAME[.TAG]|PATH|URL",
                        help="start from these weights: a published name (tools/convert.py "
                             "--list), which also sets model.name; or a .pdparams, "
                             ".safetensors, timm .pth, HF folder, Google .npz or a URL (the "
                             "same as -o model.pretrained=...)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debugging detail")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    from ..data.stats import format_stats

    config = training_config(args)
    if args.stats_only:
        from ..engine.data_report import describe_data

        run_dir, data, paths = describe_data(config)
        print(format_stats(data.stats))
        print(f"\nwrote {paths['stats']}")
        for name, path in paths.items():
            if name != "stats":
                print(f"wrote {path}")
        return 0
    from ..engine.run_log import format_scores
    from ..engine.trainer import train

    result = train(config)
    print(f"test {format_scores(result.test)} on {result.test['num_samples']} images with the "
          "best checkpoint")
    print(f"run folder:  {result.run_dir}")
    if result.best_checkpoint:
        print(f"best model:  {result.best_checkpoint}")
    for name, path in result.figures.items():
        print(f"figure:      {path}")
    print(f"dashboard:   {result.visualdl_command}")
    return 0


def training_config(args):
    """The config a training command line describes: `-c`/`-o`, and `--pretrained`."""
    return config_from_args(args, _pretrained_overrides(args.pretrained))


def _pretrained_overrides(spec) -> list:
    """-o overrides for --pretrained: the weights, and for a published name its model."""
    if not spec:
        return []
    from ..models.pretrained_registry import find_weights

    entry = find_weights(spec)
    return ([f"model.name={entry.model}"] if entry else []) + [f"model.pretrained='{spec}'"]


def cli() -> int:
    return run_cli(main)


if __name__ == "__main__":
    sys.exit(cli())
