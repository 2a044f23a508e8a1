"""`vit-visualize` / `python tools/visualize.py --weights CKPT|--pretrained NAME --image IMG`:
what a ViT attends to and what its embeddings learned (the paper's Figures 6 and 7), as PNGs
and JSON."""

import argparse
import sys
from pathlib import Path

from . import (add_config_args, add_weights_args, beside_run, loaded_from_args, run_cli,
               setup_logging)
from ..analysis import HEAD_FUSIONS
from ..data.sources import SPLITS
from ..errors import VitError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vit-visualize", description="What a ViT attends to "
                                     "and what its embeddings learned (Figures 6 and 7).")
    add_weights_args(parser)
    parser.add_argument("--image", nargs="+", default=[], metavar="PATH",
                        help="images to explain: attention rollout and per-head maps for each")
    distance = parser.add_mutually_exclusive_group()
    distance.add_argument("--images", metavar="DIR",
                          help="folder of images to average the attention distance over")
    distance.add_argument("--data", nargs="?", const="test", choices=SPLITS,
                          help="average the attention distance over a sample of this split of "
                               "the checkpoint's data set (the default: test)")
    parser.add_argument("--samples", type=int, default=64,
                        help="images sampled for the attention distance (default 64)")
    parser.add_argument("--head-fusion", default="mean", choices=HEAD_FUSIONS,
                        help="how rollout combines the heads of a layer")
    parser.add_argument("--discard-ratio", type=float, default=0.0,
                        help="share of each row's weakest attention dropped in rollout")
    parser.add_argument("--components", type=int, default=28,
                        help="principal components of the patch filters to show")
    parser.add_argument("--output", help="folder for the figures (default: <run>/attention)")
    add_config_args(parser)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    if args.samples < 1 or args.components < 1:
        raise VitError("--samples and --components must be at least 1")
    from ..engine.inference import collect_image_paths
    from ..engine.inspection import inspect_model, prediction_words, sample_split

    loaded = loaded_from_args(args)
    shown = collect_image_paths(args.image) if args.image else []
    if args.images:
        from ..data.datasets import FileImageSet

        files = collect_image_paths([args.images])[:args.samples]
        distance_set = FileImageSet(files, [0] * len(files), loaded.class_names,
                                    transform=loaded.preprocessing.eval_transform())
    else:
        distance_set = sample_split(loaded, args.data or "test", args.samples)
    output = Path(args.output) if args.output else beside_run(
        loaded.weights, "attention", Path("output") / "attention")
    result = inspect_model(loaded, shown, distance_set, output, args.head_fusion,
                           args.discard_ratio, args.components)
    for image in result["numbers"]["images"]:
        name, probability = image["top"][0]
        print(f"{image['path']}: {prediction_words(loaded)} {name} ({probability:.3f})")
    distances = result["numbers"]["mean_attention_distance_px"]
    print("mean attention distance (pixels), first and last layer: "
          f"{min(distances[0]):.1f}-{max(distances[0]):.1f} and "
          f"{min(distances[-1]):.1f}-{max(distances[-1]):.1f}")
    for name, path in result["paths"].items():
        print(f"{name + ':':28}{path}")
    return 0


def cli() -> int:
    return run_cli(main)


if __name__ == "__main__":
    sys.exit(cli())
