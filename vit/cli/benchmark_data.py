"""`python tools/benchmark_data.py [-c CONFIG] [-o ...] [--workers 0 2 4] [--epochs 2]`: images/s
of the training input pipeline (decode, augment, collate; no model) for each number of
DataLoader workers; for `data.source=fractals` also the rendering of the images themselves."""

import argparse
import sys

from . import add_config_args, config_from_args, run_cli, setup_logging
from ..errors import VitError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="benchmark_data", description="Images/s of the training input pipeline for each "
        "number of DataLoader workers (no model involved).")
    add_config_args(parser)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2],
                        help="DataLoader worker counts to time (default: 0 2)")
    parser.add_argument("--epochs", type=int, default=2, help="passes timed per count")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    if args.epochs < 1 or min(args.workers) < 0:
        raise VitError("--epochs must be at least 1 and --workers 0 or more")
    from ..engine.benchmark_data import data_pipeline_throughput

    config = config_from_args(args)
    result = data_pipeline_throughput(config, args.workers, args.epochs)
    print(f"{result['source']}: {result['images']} training images at {result['image_size']}x"
          f"{result['image_size']}, batch {result['batch_size']}")
    for row in result["rows"]:
        print(f"  workers {row['num_workers']}: {row['images_per_s']:>9,.0f} images/s "
              f"({row['images']} images in {row['seconds']} s)")
    if "render" in result:
        render, served = result["render"], result["rows"][0]
        ratio = served["images_per_s"] / render["images_per_s"]
        print(f"  rendering the fractals: {render['images_per_s']:>9,.0f} images/s "
              f"({render['images']} images of {render['size']}x{render['size']} in "
              f"{render['seconds']} s: {ratio:.2f}x the time the pipeline takes to serve as "
              f"many with workers {served['num_workers']})")
    return 0


def cli() -> int:
    return run_cli(main)


if __name__ == "__main__":
    sys.exit(cli())
