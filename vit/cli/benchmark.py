"""`vit-benchmark` / `python tools/benchmark.py [-m MODEL]`: how fast each way of running a ViT
is here, against the matrix-product ceiling and PyTorch (when installed). A table on stdout, the
numbers as JSON in the output folder, progress on stderr."""

import argparse
import datetime
import json
import platform
import sys
from pathlib import Path

from . import run_cli, setup_logging
from ..errors import VitError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vit-benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("-m", "--model", default="ViT_base_patch16_384",
                        help="model for the inference paths (default: ViT_base_patch16_384)")
    parser.add_argument("--batch", type=int, default=8, help="throughput batch (with batch 1)")
    parser.add_argument("--train-model", default="ViT_tiny_patch4_16",
                        help="model for training images/s (default: the default config's)")
    parser.add_argument("--train-batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per figure (median)")
    parser.add_argument("--no-training", action="store_true", help="time inference only")
    parser.add_argument("--output", default="output/benchmarks",
                        help="folder for the JSON (default: output/benchmarks)")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    if min(args.batch, args.train_batch, args.repeats) < 1:
        raise VitError("--batch, --train-batch and --repeats must be at least 1")
    from .. import cpu, kernels
    from ..engine.benchmark import (format_timings, inference_timings, matmul_ceiling,
                                    training_timings)
    from ..models import model_args

    model_args(args.model)  # an unknown name is refused before anything is timed
    model_args(args.train_model)

    def progress(stage, done, total):
        print(f"[{done + 1}/{total}] {stage}", file=sys.stderr, flush=True)

    print(f"matrix-product ceiling ({cpu.math_threads()} threads)", file=sys.stderr)
    ceiling = matmul_ceiling()
    training = []
    if not args.no_training:
        # first, while the process holds no predictor or ONNX Runtime session: after them
        # Paddle's small eager operations ran about 10 % slower
        print(f"training {args.train_model}, batch {args.train_batch}", file=sys.stderr)
        training = training_timings(args.train_model, args.train_batch)
    rows = inference_timings(args.model, args.batch, args.repeats, progress=progress) + training
    print(f"{args.model} inference, {args.train_model} training; {cpu.math_threads()} threads, "
          f"{platform.processor() or platform.machine()} ({cpu.cpu_vendor() or 'unknown'}; "
          f"{', '.join(cpu.vector_flags()) or 'no AVX2'}); fused CPU kernels "
          f"{'on' if kernels.available() else 'off'}")
    print(format_timings(rows, ceiling))
    path = _save(args, rows, ceiling)
    print(f"\nnumbers: {path}")
    return 0


def _save(args, rows, ceiling) -> Path:
    import paddle

    from .. import cpu, kernels
    from ..engine.benchmark import runtime_versions

    folder = Path(args.output)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{args.model}-{datetime.datetime.now():%Y%m%d-%H%M%S}.json"
    record = {"model": args.model, "train_model": args.train_model, "threads": cpu.math_threads(),
              "cpu_vendor": cpu.cpu_vendor(), "cpu_flags": cpu.vector_flags(),
              "malloc": cpu.allocator_settings(), "paddle": paddle.__version__,
              "versions": runtime_versions(),
              "fused_cpu_kernels": kernels.available(),
              "matmul_gflops": ceiling,
              "rows": [{"path": r.path, "batch": r.batch, "seconds": r.seconds,
                        "images_per_s": r.images_per_s, "gflops": r.gflops, "note": r.note}
                       for r in rows]}
    path.write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return path


def cli() -> int:
    return run_cli(main)


if __name__ == "__main__":
    sys.exit(cli())
