"""`vit-infer` / `python tools/infer.py`: predict images, or evaluate on a split.

    python tools/infer.py --weights output/<run>/checkpoints/best.pdparams --images a.jpg dir/
    python tools/infer.py --weights output/<run>/checkpoints/best.pdparams --eval [--split test]
    python tools/infer.py --inference-model output/<run>/export --images dir/   (or --eval)
    python tools/infer.py --onnx output/<run>/export --images dir/   (ONNX Runtime, or --eval)
    python tools/infer.py --openvino output/<run>/export --images dir/   (OpenVINO, or --eval)
"""

import argparse
import csv
import datetime
import json
import sys
from pathlib import Path

from . import (add_config_args, add_weights_args, beside_run, loaded_from_args,
               recorded_config_args, run_cli, setup_logging)
from ..data.sources import SPLITS
from ..engine.paddle_predictor import PRECISIONS
from ..errors import VitError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="vit-infer", description="Predict or evaluate with a "
                                     "trained ViT.")
    source = add_weights_args(parser)
    source.add_argument("--inference-model", metavar="DIR",
                        help="folder written by tools/export.py (Paddle Inference)")
    source.add_argument("--onnx", metavar="DIR",
                        help="folder written by tools/export.py --format onnx (ONNX Runtime)")
    source.add_argument("--openvino", metavar="DIR",
                        help="folder written by tools/export.py --format openvino (OpenVINO)")
    task = parser.add_mutually_exclusive_group(required=True)
    task.add_argument("--images", nargs="+", metavar="PATH",
                      help="image files or folders (searched recursively)")
    task.add_argument("--eval", action="store_true", help="evaluate on a split of the data set")
    parser.add_argument("--split", default="test", choices=SPLITS)
    parser.add_argument("--top-k", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--output", help="folder for the results (default: beside the "
                                         "checkpoint's run, or output/infer-<date-time>)")
    parser.add_argument("--vdl-dir", help="also log the evaluation to this VisualDL folder")
    parser.add_argument("--precision", choices=PRECISIONS,
                        help="with --inference-model, --onnx or --openvino: run at this "
                             "precision (default: the one recorded at export); bf16 needs a "
                             "CPU with native bfloat16 (OpenVINO runs float32 without it), "
                             "fp16 a GPU, int8 --onnx or --openvino and an int8 export")
    add_config_args(parser)
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    setup_logging(args.verbose)
    if args.top_k < 1 or args.batch_size < 1:
        raise VitError("--top-k and --batch-size must be at least 1")
    config, overrides = recorded_config_args(args)
    runtime = "onnx" if args.onnx else "openvino" if args.openvino else "paddle"
    exported = args.inference_model or args.onnx or args.openvino
    if exported:
        from ..engine.export import InferenceModel

        predictor = InferenceModel(exported, config=config, overrides=overrides,
                                   precision=args.precision, runtime=runtime)
        name = f"eval_{args.split}" if args.eval else "predictions"
        if runtime != "paddle":
            name += f"_{runtime}" + ("_int8" if predictor.precision == "int8" else "")
        output = Path(args.output) if args.output else Path(exported) / name
    else:
        if args.precision not in (None, "fp32"):
            raise VitError(f"--precision {args.precision} works with --inference-model",
                           "export the checkpoint with tools/export.py and run that")
        predictor = loaded_from_args(args)
        output = Path(args.output) if args.output else _default_output(predictor.weights, args)
    if args.eval:
        reference = None
        if exported and predictor.precision == "int8":  # and the float32 model it came from
            reference = InferenceModel(exported, config=config, overrides=overrides,
                                       precision="fp32", runtime=runtime)
        return _evaluate(predictor, args, output, reference)
    from ..engine.inference import predict_paths

    result = predict_paths(predictor, args.images, args.top_k, args.batch_size)
    _print_and_save_predictions(result, output, predictor.preprocessing.multilabel)
    return 0


def _default_output(weights: Path, args) -> Path:
    name = f"eval_{args.split}" if args.eval else "predictions"
    return beside_run(weights, f"{name}_{weights.stem}",
                      Path("output") / f"infer-{datetime.datetime.now():%Y%m%d-%H%M%S}")


def _evaluate(predictor, args, output: Path, reference=None) -> int:
    from ..engine.evaluation import evaluate_model
    from ..engine.inference import agreement_words
    from ..engine.run_log import format_scores, task_of

    metrics = evaluate_model(predictor, args.split, output, args.vdl_dir, args.batch_size,
                             reference=reference)
    print(f"{args.split} split: {format_scores(metrics)}  on {metrics['num_samples']} images "
          f"({metrics['images_per_s']:.0f} images/s)")
    if "agreement" in metrics:
        same = metrics["agreement"]
        print(f"{predictor.precision} against {same['reference']} on the same {same['images']} "
              f"images: {agreement_words(same)}, max |logit difference| "
              f"{same['max_abs_logit_difference']:.3g}")
    per = "label" if task_of(metrics) == "multilabel" else "class"
    print(f"\nper-{per} report:\n{metrics['report']}")
    for key, label in (("confusion_png", "confusion matrix"), ("confusion_csv", "confusion matrix (CSV)"),
                       ("mistakes", "mistakes"), ("pr_curves", "precision-recall"),
                       ("report", "report"), ("metrics", "metrics")):
        if key in metrics["paths"]:
            print(f"{label + ':':24}{metrics['paths'][key]}")
    return 0


def _print_and_save_predictions(result: dict, output: Path, multilabel: bool):
    rows = result["rows"]
    for row in rows:
        if "error" in row:
            print(f"{row['path']}: ERROR {row['error']}")
        elif multilabel:
            print(f"{row['path']}: " + (", ".join(f"{name} {p:.3f}" for name, p in row["labels"])
                                        or "no label above its threshold"))
        else:
            print(f"{row['path']}: " + ", ".join(f"{name} {p:.3f}" for name, p in row["top"]))
    output.mkdir(parents=True, exist_ok=True)
    (output / "predictions.json").write_text(json.dumps(rows, indent=1) + "\n", encoding="utf-8")
    with open(output / "predictions.csv", "w", newline="", encoding="utf-8") as handle:
        _write_csv(csv.writer(handle), rows, multilabel)
    good = sum("top" in r for r in rows)
    print(f"\n{good} of {len(rows)} images predicted ({result['images_per_s']:.0f} images/s); "
          f"results in {output / 'predictions.csv'} and {output / 'predictions.json'}")


def _write_csv(writer, rows: list, multilabel: bool):
    """One row per image: the top-k (class, probability) pairs, or for multilabel the labels
    above threshold (space-separated, as a CSV label list reads them) and every label's
    probability."""
    if multilabel:
        names = next((list(row["probabilities"]) for row in rows if "probabilities" in row), [])
        writer.writerow(["path", "labels", *names, "error"])
        for row in rows:
            scores = row.get("probabilities", {})
            writer.writerow([row["path"], " ".join(name for name, _ in row.get("labels", [])),
                             *[f"{scores[n]:.6f}" if n in scores else "" for n in names],
                             row.get("error", "")])
        return
    k = max((len(r["top"]) for r in rows if "top" in r), default=0)
    writer.writerow(["path", *[f"top{i}_{part}" for i in range(1, k + 1)
                               for part in ("class", "prob")], "error"])
    for row in rows:
        cells = [c for name, p in row.get("top", []) for c in (name, f"{p:.6f}")]
        writer.writerow([row["path"], *cells, *[""] * (2 * k - len(cells)), row.get("error", "")])


def cli() -> int:
    return run_cli(main)


if __name__ == "__main__":
    sys.exit(cli())
