"""Evaluating a trained model on a split: accuracy, per-class report, confusion matrix, mistakes.

Files written into the output folder: `metrics.json` (`top1`, `top5`, `loss`, `num_samples`,
`per_class`, averages), `report.txt` (scikit-learn's classification report),
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

from ..data.sources import build_datasets
from ..data.transforms import denormalize
from ..errors import CheckpointError
from ..viz import save_figure
from ..viz.eval_figures import plot_confusion_matrix, plot_mistakes
from .inference import LoadedModel, softmax
from .loaders import build_loader
from .loop import evaluate

log = logging.getLogger(__name__)


def evaluate_model(loaded: LoadedModel, split: str = "test", output_dir=None, vdl_dir=None,
                   batch_size: int = 128, max_mistakes: int = 24,
                   progress: Optional[Callable[[str, int, int], None]] = None) -> dict:
    """Evaluate `loaded` on `split` of its config's data set and write the report files.

    Returns:
        the metrics dict (also `metrics.json`), with `paths` of the written files and
        `confusion_matrix` as a list of rows.
    """
    # the split alone: the checkpoint brings its own normalisation, so no statistics are needed
    data = build_datasets(loaded.config.data, progress)
    if list(data.class_names) != list(loaded.class_names):
        raise CheckpointError(
            f"the model knows {loaded.num_classes} classes ({', '.join(loaded.class_names[:4])}"
            f"...) but the data set has {data.num_classes} ({', '.join(data.class_names[:4])}...)",
            "evaluate on the data set the model was trained on")
    dataset = data.splits[split].with_transform(loaded.eval_transform())
    started = time.perf_counter()
    result = evaluate(loaded.model, build_loader(dataset, batch_size, False), loaded.num_classes,
                      keep_outputs=True)
    seconds = time.perf_counter() - started
    labels, logits = result["labels"], result["logits"]
    predictions = logits.argmax(axis=1) if len(logits) else np.zeros(0, dtype=np.int64)
    classes = list(range(loaded.num_classes))
    matrix = confusion_matrix(labels, predictions, labels=classes)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=classes, zero_division=0)
    metrics = {
        "split": split, "top1": result["top1"], "top5": result["top5"], "loss": result["loss"],
        "num_samples": result["num_samples"], "skipped": result["skipped"],
        "images_per_s": round(result["num_samples"] / max(seconds, 1e-9), 1),
        "weights": str(loaded.weights),
        "per_class": {name: {"precision": float(p), "recall": float(r), "f1": float(f),
                             "support": int(s)}
                      for name, p, r, f, s in zip(loaded.class_names, precision, recall, f1, support)},
        "macro_f1": float(np.mean(f1)) if len(f1) else 0.0,
        "confusion_matrix": matrix.tolist(),
    }
    report = classification_report(labels, predictions, labels=classes,
                                   target_names=loaded.class_names, digits=4, zero_division=0)
    if output_dir is not None:
        metrics["paths"] = _write_report(Path(output_dir), loaded, dataset, metrics, report, matrix,
                                         logits, labels, result["kept_indices"], max_mistakes)
        if vdl_dir is not None:
            _log_to_visualdl(vdl_dir, split, metrics)
    metrics["report"] = report
    return metrics


def _write_report(output_dir: Path, loaded, dataset, metrics, report, matrix, logits, labels,
                  kept, max_mistakes) -> dict:
    output_dir.mkdir(parents=True, exist_ok=True)
    paths = {"metrics": output_dir / "metrics.json", "report": output_dir / "report.txt",
             "confusion_csv": output_dir / "confusion_matrix.csv",
             "confusion_png": output_dir / "confusion_matrix.png",
             "mistakes": output_dir / "mistakes.png"}
    paths["report"].write_text(report, encoding="utf-8")
    with open(paths["confusion_csv"], "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["true \\ predicted", *loaded.class_names])
        for name, row in zip(loaded.class_names, matrix):
            writer.writerow([name, *row.tolist()])
    save_figure(plot_confusion_matrix(matrix, loaded.class_names,
                                      f"Confusion matrix, {metrics['split']} split"),
                paths["confusion_png"])
    save_figure(_mistakes_figure(loaded, dataset, logits, labels, kept, max_mistakes),
                paths["mistakes"])
    metrics = {**metrics, "paths": {k: str(v) for k, v in paths.items()}}
    paths["metrics"].write_text(json.dumps(metrics, indent=1) + "\n", encoding="utf-8")
    return {k: str(v) for k, v in paths.items()}


def _mistakes_figure(loaded, dataset, logits, labels, kept, limit):
    """The wrong predictions the model was surest of, as the model saw them."""
    probabilities = softmax(logits) if len(logits) else np.zeros((0, loaded.num_classes))
    predicted = probabilities.argmax(axis=1) if len(probabilities) else np.zeros(0, np.int64)
    wrong = np.flatnonzero(predicted != labels)
    wrong = wrong[np.argsort(-probabilities[wrong, predicted[wrong]])][:limit]
    images = [denormalize(dataset[int(kept[i])][0], loaded.mean, loaded.std) for i in wrong]
    return plot_mistakes(images, [loaded.class_names[labels[i]] for i in wrong],
                         [loaded.class_names[predicted[i]] for i in wrong],
                         [float(probabilities[i, predicted[i]]) for i in wrong],
                         f"Most confident mistakes ({len(np.flatnonzero(predicted != labels))} "
                         f"of {len(labels)} images wrong)")


def _log_to_visualdl(vdl_dir, split, metrics):
    from PIL import Image
    from visualdl import LogWriter

    with LogWriter(logdir=str(vdl_dir)) as writer:
        for key in ("top1", "top5", "loss"):
            writer.add_scalar(f"eval/{split}/{key}", metrics[key], 0)
        for key in ("confusion_png", "mistakes"):
            with Image.open(metrics["paths"][key]) as picture:
                writer.add_image(f"eval/{split}/{key}", np.asarray(picture.convert("RGB")), 0)
