"""Measure the training input pipeline's images/s for a config (no model involved):

    python tools/benchmark_data.py [-c CONFIG] [-o ...] [--workers 0 2 4] [--epochs 2]

It builds the configured data set and its training pipeline, then times the DataLoader with each
number of workers.
"""

import argparse
import sys

from vit.cli import add_config_args, config_from_args, run_cli, setup_logging


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_config_args(parser)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args(argv)
    setup_logging()
    from vit.data.builder import prepare_data
    from vit.data.loaders import loader_throughput
    from vit.engine.builders import resolve_image_size

    config = config_from_args(args)
    data = prepare_data(config, resolve_image_size(config))
    print(f"{config.data.source}: {len(data.train)} training images at "
          f"{data.image_size}x{data.image_size}, batch {config.data.batch_size}")
    for workers in args.workers:
        result = loader_throughput(data.train, config.data.batch_size, workers, args.epochs)
        print(f"  workers {workers}: {result['images_per_s']:>9,.0f} images/s "
              f"({result['images']} images in {result['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(run_cli(main))
