"""`python tools/export.py --weights CKPT [--output DIR]`: a Paddle Inference model."""

import argparse
import sys
from pathlib import Path

from . import beside_run, run_cli, setup_logging


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vit-export", description="Export a checkpoint for "
                                     "Paddle Inference (static graph + inference.yml + safetensors).")
    parser.add_argument("--weights", required=True, help="checkpoint .pdparams or a run folder")
    parser.add_argument("--output", help="folder to write (default: <run>/export)")
    parser.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32",
                        help="the precision inference.yml records for tools/infer.py (the "
                             "graph stays float32): bf16 for CPUs with native bfloat16, fp16 "
                             "for GPUs")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    from ..engine.export import export_inference_model
    from ..engine.inference import load_for_inference
    loaded = load_for_inference(args.weights)
    output = Path(args.output) if args.output else beside_run(
        loaded.weights, "export", loaded.weights.with_suffix("") / "export")
    paths = export_inference_model(loaded, output, args.precision)
    for name, path in paths.items():
        print(f"{name + ':':15}{path}")
    print(f"\nrun it: python tools/infer.py --inference-model {output} --images IMAGES")
    return 0


def cli() -> int:
    return run_cli(main)


if __name__ == "__main__":
    sys.exit(cli())
