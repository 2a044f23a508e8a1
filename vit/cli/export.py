"""`python tools/export.py --weights CKPT | --pretrained NAME [--output DIR] [--format onnx]`: a
Paddle Inference model, and with `--format onnx` an ONNX one beside it."""

import argparse
import sys
from pathlib import Path

from ..engine.export import FORMATS
from ..engine.inference import agreement_words
from ..engine.run_folder import RunFolder
from ..engine.paddle_predictor import PRECISIONS
from . import (add_config_args, add_weights_args, beside_run, loaded_from_args, run_cli,
               setup_logging)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vit-export", description="Export a checkpoint for Paddle Inference (static graph "
        "+ inference.yml + safetensors), and for ONNX Runtime or OpenVINO beside it.")
    add_weights_args(parser)
    parser.add_argument("--output", help="folder to write (default: <run>/export)")
    parser.add_argument("--precision", choices=PRECISIONS,
                        default="fp32",
                        help="the precision inference.yml records for tools/infer.py (the "
                             "graphs stay float32): bf16 for CPUs with native bfloat16, fp16 "
                             "for GPUs; int8 (with --format onnx or openvino) also writes "
                             "model.int8.onnx (ONNX Runtime) or model.int8.xml (NNCF), "
                             "calibrated on training images")
    parser.add_argument("--format", choices=FORMATS, default="paddle",
                        help="onnx: also model.onnx (paddle2onnx), checked against the eager "
                             "model with ONNX Runtime, needs pip install -e '.[cpu,onnx]'; "
                             "openvino: also OpenVINO's model.xml, converted from model.onnx "
                             "and checked the same way, needs pip install -e "
                             "'.[cpu,openvino]'")
    add_config_args(parser)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging()
    from ..engine.export import export_inference_model

    loaded = loaded_from_args(args)
    fallback = (Path("output") / "export" / args.pretrained if args.pretrained
                else loaded.weights.with_suffix("") / "export")
    output = Path(args.output) if args.output else beside_run(loaded.weights, RunFolder.EXPORT,
                                                              fallback)
    paths = export_inference_model(loaded, output, args.precision, args.format)
    for name, path in paths.items():
        print(f"{name + ':':15}{path}")
    paddle_run = f"python tools/infer.py --inference-model {output} --images IMAGES"
    print(f"\nrun it: {paddle_run}" + (" --precision fp32" if args.precision == "int8" else ""))
    import yaml

    info = yaml.safe_load(paths["inference_yml"].read_text(encoding="utf-8"))
    for runtime, name in (("onnx", "ONNX Runtime"), ("openvino", "OpenVINO")):
        if runtime in info:
            _print_check(info[runtime], runtime, name, output, args.precision)
    return 0


def _print_check(check: dict, runtime: str, name: str, output: Path, precision: str):
    """How to run what the export wrote for `runtime` (in float32 where the recorded int8 was
    made for another runtime), and how close it came to eager Paddle."""
    fp32 = " --precision fp32" if precision == "int8" and "int8" not in check else ""
    print(f"   or: python tools/infer.py --{runtime} {output} --images IMAGES{fp32}\n"
          f"{name} against eager Paddle on a sample: max |logit difference| "
          f"{check['max_abs_logit_difference']:.2e}")
    if "int8" in check:
        low = check["int8"]
        print(f"int8 ({low['format']}, calibrated on {low['calibration_images']} training "
              f"images) against float32 on {low['checked_images']} validation images: "
              f"{agreement_words(low)}, max |logit difference| "
              f"{low['max_abs_logit_difference']:.3f}")


def cli() -> int:
    return run_cli(main)


if __name__ == "__main__":
    sys.exit(cli())
