"""The evaluation report of a model that gives several labels per image: per label its average
precision, threshold, precision, recall, F1 and support; the mAP, exact-match ratio and Hamming
loss; written as `metrics.json`, `report.txt` and `pr_curves.png` (each label's
precision-recall curve with its threshold marked). `evaluation.evaluate_model` hands over to
`label_report` once the figures are scored (scores.label_scores)."""

import json
from pathlib import Path

import numpy as np
from sklearn.metrics import precision_recall_curve

from ..viz import save_figure
from ..viz.eval_figures import plot_precision_recall
from .run_log import log_evaluation
from .scores import sigmoid

# The per-label figures of `scores.label_scores`, as lists in label order.
PER_LABEL = ("average_precision", "threshold", "precision", "recall", "f1", "support")


def label_report(metrics: dict, outputs, names, output_dir=None, vdl_dir=None) -> dict:
    """`metrics` (from `evaluate`, multilabel) with the per-label figures keyed by label name
    (`per_label`), the report text, and the files written into `output_dir` (`paths`)."""
    lists = {**{key: metrics.pop(key) for key in PER_LABEL if key in metrics},
             "threshold": metrics.pop("thresholds")}
    metrics["per_label"] = {name: {key: lists[key][i] for key in PER_LABEL}
                            for i, name in enumerate(names)}
    report = format_label_report(metrics)
    if output_dir is not None:
        metrics["paths"] = _write(Path(output_dir), metrics, report, outputs, names)
        if vdl_dir is not None:
            log_evaluation(vdl_dir, metrics["split"], metrics)
    metrics["report"] = report
    return metrics


def format_label_report(metrics: dict) -> str:
    """The per-label table and the summary lines, as scikit-learn's classification report
    lays them out."""
    width = max([len(name) for name in metrics["per_label"]] + [12])
    lines = [f"{'':>{width}}  {'AP':>7}{'threshold':>11}{'precision':>11}{'recall':>9}"
             f"{'f1':>9}{'support':>9}", ""]
    for name, row in metrics["per_label"].items():
        ap = "-" if row["average_precision"] is None else f"{row['average_precision']:.4f}"
        lines.append(f"{name:>{width}}  {ap:>7}{row['threshold']:>11.4f}{row['precision']:>11.4f}"
                     f"{row['recall']:>9.4f}{row['f1']:>9.4f}{row['support']:>9}")
    f1 = [row["f1"] for row in metrics["per_label"].values()]
    lines += ["", f"{'mAP':>{width}}  {metrics['map']:>7.4f}",
              f"{'macro F1':>{width}}  {float(np.mean(f1)) if f1 else 0.0:>7.4f}",
              f"{'exact match':>{width}}  {metrics['exact_match']:>7.4f}",
              f"{'Hamming loss':>{width}}  {metrics['hamming_loss']:>7.4f}",
              f"{'images':>{width}}  {metrics['num_samples']:>7}"]
    return "\n".join(lines) + "\n"


def _write(output_dir: Path, metrics: dict, report: str, outputs, names) -> dict:
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": output_dir / "metrics.json", "report": output_dir / "report.txt",
             "pr_curves": output_dir / "pr_curves.png"}
    paths["report"].write_text(report, encoding="utf-8")
    save_figure(plot_precision_recall(_curves(outputs, names, metrics),
                                      f"Precision-recall per label, {metrics['split']} split"),
                paths["pr_curves"])
    written = {key: str(path) for key, path in paths.items()}
    paths["metrics"].write_text(json.dumps({**metrics, "paths": written}, indent=1) + "\n",
                                encoding="utf-8")
    return written


def _curves(outputs, names, metrics: dict) -> list:
    """Per label with a positive: (name, precision, recall, AP, the (recall, precision) its
    threshold gives)."""
    probabilities, labels = sigmoid(outputs.values), outputs.labels
    curves = []
    for k, name in enumerate(names):
        if not len(labels) or not labels[:, k].any():
            continue
        precision, recall, _ = precision_recall_curve(labels[:, k], probabilities[:, k])
        row = metrics["per_label"][name]
        curves.append((name, precision, recall, row["average_precision"],
                       (row["recall"], row["precision"])))
    return curves
