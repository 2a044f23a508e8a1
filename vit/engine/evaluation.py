"""Evaluating a trained model on a split: accuracy, per-class report, confusion matrix, mistakes.

Works with any predictor (inference.py): a checkpoint run eagerly, or an exported model run by
Paddle Inference. Files written into the output folder: `metrics.json` (`top1`, `top5`, `loss`,
`num_samples`, `per_class`, averages), `report.txt` (scikit-learn's classification report),
`confusion_matrix.csv` (class names as header and row labels; rows are true classes, counts sum
to the number of samples), `confusion_matrix.png` and `mistakes.png`.
"""

import csv
import json
import logging
import time
from pathlib import Path
from typing import Callable, Optional

import numpy as np
from sklearn.metrics import classification_report, confusion_matrix, precision_recall_fscore_support

from ..data.loaders import build_loader
from ..data.sources import build_datasets
from ..data.transforms import denormalize
from ..errors import CheckpointError
from ..viz import save_figure
from ..viz.eval_figures import plot_confusion_matrix, plot_mistakes
from .inference import softmax
from .run_log import log_evaluation

log = logging.getLogger(__name__)


def evaluate_model(predictor, split: str = "test", output_dir=None, vdl_dir=None,
                   batch_size: int = 128, max_mistakes: int = 24,
                   progress: Optional[Callable[[str, int, int], None]] = None) -> dict:
    """Evaluate `predictor` on `split` of its config's data set and write the report files.

    Returns:
        the metrics dict (also `metrics.json`), with `paths` of the written files,
        `confusion_matrix` as a list of rows and `report` (scikit-learn's text).
    """
    names = list(predictor.preprocessing.class_names)
    # the split alone: the record brings its own normalisation, so no statistics are needed
    data = build_datasets(predictor.config.data, progress)
    if list(data.class_names) != names:
        raise CheckpointError(
            f"the model knows {len(names)} classes ({', '.join(names[:4])}...) but the data set "
            f"has {data.num_classes} ({', '.join(data.class_names[:4])}...)",
            "evaluate on the data set the model was trained on")
    dataset = data.splits[split].with_transform(predictor.preprocessing.eval_transform())
    started = time.perf_counter()
    logits, labels, kept, skipped = _collect_logits(predictor, dataset, batch_size, progress)
    seconds = time.perf_counter() - started
    metrics = _scores(logits, labels, names)
    metrics.update(split=split, skipped=skipped, weights=predictor.source,
                   images_per_s=round(len(labels) / max(seconds, 1e-9), 1))
    report = classification_report(labels, logits.argmax(1) if len(logits) else labels,
                                   labels=list(range(len(names))), target_names=names, digits=4,
                                   zero_division=0)
    if output_dir is not None:
        metrics["paths"] = _write_report(Path(output_dir), predictor, dataset, metrics, report,
                                         logits, labels, kept, max_mistakes)
        if vdl_dir is not None:
            log_evaluation(vdl_dir, split, metrics)
    metrics["report"] = report
    return metrics


def _collect_logits(predictor, dataset, batch_size: int, progress):
    """Logits [N, K], labels [N], dataset positions [N] and the number of unreadable images."""
    all_logits, all_labels, all_indices, skipped = [], [], [], 0
    loader = build_loader(dataset, batch_size, False)
    for done, batch in enumerate(loader, start=1):
        skipped += len(batch["skipped"])
        if batch["images"].shape[0]:
            all_logits.append(np.asarray(predictor.logits(batch["images"]), dtype=np.float32))
            all_labels.append(batch["labels"].numpy())
            all_indices.append(batch["indices"].numpy())
        if progress:
            progress("evaluating", done, len(loader))
    if not all_logits:
        empty = np.zeros((0,), dtype=np.int64)
        return np.zeros((0, len(predictor.preprocessing.class_names))), empty, empty, skipped
    return (np.concatenate(all_logits), np.concatenate(all_labels).astype(np.int64),
            np.concatenate(all_indices), skipped)


def _scores(logits: np.ndarray, labels: np.ndarray, names) -> dict:
    """Top-1/top-5 accuracy, cross-entropy, per-class scores and the confusion matrix."""
    count, classes = len(labels), list(range(len(names)))
    predictions = logits.argmax(axis=1) if count else np.zeros(0, dtype=np.int64)
    top = np.argsort(-logits, axis=1, kind="stable")[:, :min(5, len(names))]
    log_probabilities = np.log(np.clip(softmax(logits), 1e-300, None)) if count else logits
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=classes, zero_division=0)
    return {
        "top1": float((predictions == labels).mean()) if count else 0.0,
        "top5": float((top == labels[:, None]).any(1).mean()) if count else 0.0,
        "loss": float(-log_probabilities[np.arange(count), labels].mean()) if count else 0.0,
        "num_samples": int(count),
        "per_class": {name: {"precision": float(p), "recall": float(r), "f1": float(f),
                             "support": int(s)}
                      for name, p, r, f, s in zip(names, precision, recall, f1, support)},
        "macro_f1": float(np.mean(f1)) if len(f1) else 0.0,
        "confusion_matrix": confusion_matrix(labels, predictions, labels=classes).tolist(),
    }


def _write_report(output_dir: Path, predictor, dataset, metrics, report, logits, labels, kept,
                  max_mistakes) -> dict:
    output_dir.mkdir(parents=True, exist_ok=True)
    names = list(predictor.preprocessing.class_names)
    matrix = np.asarray(metrics["confusion_matrix"])
    paths = {"metrics": output_dir / "metrics.json", "report": output_dir / "report.txt",
             "confusion_csv": output_dir / "confusion_matrix.csv",
             "confusion_png": output_dir / "confusion_matrix.png",
             "mistakes": output_dir / "mistakes.png"}
    paths["report"].write_text(report, encoding="utf-8")
    with open(paths["confusion_csv"], "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true \\ predicted", *names])
        for name, row in zip(names, matrix):
            writer.writerow([name, *row.tolist()])
    save_figure(plot_confusion_matrix(matrix, names, f"Confusion matrix, {metrics['split']} split"),
                paths["confusion_png"])
    save_figure(_mistakes_figure(predictor.preprocessing, dataset, logits, labels, kept,
                                 max_mistakes), paths["mistakes"])
    metrics = {**metrics, "paths": {k: str(v) for k, v in paths.items()}}
    paths["metrics"].write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")
    return {k: str(v) for k, v in paths.items()}


def _mistakes_figure(preprocessing, dataset, logits, labels, kept, limit):
    """The wrong predictions the model was surest of, as the model saw them."""
    names = preprocessing.class_names
    probabilities = softmax(logits) if len(logits) else np.zeros((0, len(names)))
    predicted = probabilities.argmax(axis=1) if len(probabilities) else np.zeros(0, np.int64)
    wrong = np.flatnonzero(predicted != labels)
    shown = wrong[np.argsort(-probabilities[wrong, predicted[wrong]])][:limit]
    images = [denormalize(dataset[int(kept[i])][0], preprocessing.mean, preprocessing.std)
              for i in shown]
    return plot_mistakes(images, [names[labels[i]] for i in shown],
                         [names[predicted[i]] for i in shown],
                         [float(probabilities[i, predicted[i]]) for i in shown],
                         f"Most confident mistakes ({len(wrong)} of {len(labels)} images wrong)")
