"""`vit-probe` / `python tools/probe.py --weights CKPT | --pretrained NAME --shots 5 10`: linear
few-shot accuracy of a model's frozen features on a data set (the paper's Figure 4 measure)."""

import argparse
import json
import sys
from pathlib import Path

from . import (add_config_args, add_weights_args, beside_run, loaded_from_args, run_cli,
               setup_logging)
from ..errors import VitError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vit-probe", description="Linear few-shot accuracy "
                                     "of a model's frozen features (the paper's Figure 4).")
    add_weights_args(parser)
    parser.add_argument("--shots", type=int, nargs="+", default=[1, 5, 10, 25],
                        help="images per class to fit the probe on (default: 1 5 10 25)")
    parser.add_argument("--draws", type=int, default=5,
                        help="random draws of those images per k (default 5)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the draws (default 0; the transfer experiment uses the "
                        "run's seed)")
    parser.add_argument("--output", help="folder for probe.json (default: "
                        "<run>/probe_<checkpoint>, e.g. <run>/probe_best; <run>/probe is the "
                        "transfer experiment's)")
    add_config_args(parser)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    if args.draws < 1:
        raise VitError(f"--draws must be at least 1, got {args.draws}")
    from ..engine.probe import few_shot_accuracy

    loaded = loaded_from_args(args)
    result = few_shot_accuracy(loaded, args.shots, args.draws, args.seed)
    print(f"linear few-shot accuracy on {result['source']} ({result['num_classes']} classes, "
          f"{result['test_images']} test images, {args.draws} draws)")
    print(f"  the k images of every class drawn from {result['train_images']} training "
          f"images, seed {args.seed}")
    for k, score in result["shots"].items():
        print(f"  {k:>3}-shot: {score['mean']:.4f} +- {score['std']:.4f}")
    output = Path(args.output) if args.output else default_output(loaded.weights)
    output.mkdir(parents=True, exist_ok=True)
    (output / "probe.json").write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"numbers: {output / 'probe.json'}")
    return 0


def default_output(weights: Path) -> Path:
    """`<run>/probe_<checkpoint>` (`probe_best` for `checkpoints/best.pdparams`), else
    output/probe: never `<run>/probe`, where the transfer experiment keeps the probe it reuses,
    so a probe run by hand cannot stand in for the experiment's."""
    return beside_run(weights, f"probe_{weights.stem}", Path("output") / "probe")


def cli() -> int:
    return run_cli(main)


if __name__ == "__main__":
    sys.exit(cli())
