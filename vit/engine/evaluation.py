"""Evaluation: one core that every evaluation goes through, and the report on a split.

`evaluate(logits_fn, loader, num_classes)` is the core: it collects the logits of every batch and
scores them (scores.py: top-1, top-5, balanced accuracy and cross-entropy, summed over ranks
under data parallelism; or for several labels per image mAP, exact match and Hamming loss at
per-label thresholds). The trainer's validation and test, and `evaluate_model` (the tools and
the app), all call it, so a number means the same wherever it is shown.

`evaluate_model` works with any predictor (inference.py): a checkpoint run eagerly, or an
exported model run by Paddle Inference, ONNX Runtime or OpenVINO; a multilabel model's report
is label_report.py's. Files written into the output folder: `metrics.json` (`top1`, `top5`,
`balanced_accuracy`, `loss`, `num_samples`, `per_class`, averages), `report.txt` (scikit-learn's
classification report), `confusion_matrix.csv` (class names as header and row labels; rows are
true classes, counts sum to the number of samples), `confusion_matrix.png` and `mistakes.png`.
"""

import csv
import json
import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import paddle
from sklearn.metrics import classification_report, confusion_matrix, precision_recall_fscore_support

from ..data.loaders import build_loader
from ..data.preprocessing import Preprocessing
from ..data.sources import build_datasets
from ..data.transforms import denormalize
from ..errors import CheckpointError
from ..progress import Progress
from ..viz import save_figure
from ..viz.eval_figures import plot_confusion_matrix, plot_mistakes
from .inference import logit_agreement
from .scores import class_score_sums, class_scores, label_scores, softmax
from .run_log import log_evaluation

log = logging.getLogger(__name__)


@dataclass
class Outputs:
    """What a model gave for a split: its outputs [N, K] (logits, or features), labels [N],
    the dataset positions [N] of those images, and how many images could not be read (this
    rank's share)."""

    values: np.ndarray
    labels: np.ndarray
    indices: np.ndarray
    skipped: int


def evaluate(logits_fn: Callable, loader, num_classes: int, distributed: bool = False,
             progress: Progress = None, multilabel: bool = False, thresholds=None):
    """Score `logits_fn` (a batch [B, C, H, W] -> logits [B, K]) over the batches of `loader`
    (scores.py says what each figure means).

    Args:
        multilabel: the labels are 0/1 vectors [B, K] and each output a sigmoid.
        thresholds: multilabel: the per-label probability thresholds to judge by; None chooses
            them on these images (the validation split).

    Returns:
        (scores, outputs): `scores` has `loss` and `num_samples` (over all ranks when
        `distributed`) and `skipped`, besides `top1`, `top5`, `balanced_accuracy` and per-class
        `recall` (multiclass) or `map`, `exact_match`, `hamming_loss`, `thresholds` and the
        per-label figures (multilabel); `outputs` is this rank's `Outputs`.
    """
    outputs = collect_outputs(logits_fn, loader, num_classes, progress)
    if multilabel:
        values, labels = outputs.values, outputs.labels.reshape(-1, num_classes)
        if distributed:
            values, labels = _gathered(values, labels)
        scores = label_scores(values, labels, thresholds)
    else:
        sums = class_score_sums(outputs.values, outputs.labels, num_classes)
        if distributed:  # each rank scored its share: report the whole
            reduced = paddle.to_tensor(sums)
            paddle.distributed.all_reduce(reduced)
            sums = reduced.numpy()
        scores = class_scores(sums, num_classes)
    return {**scores, "skipped": outputs.skipped}, outputs


def _gathered(values: np.ndarray, labels: np.ndarray):
    """Every rank's outputs and labels, concatenated (average precision needs them all)."""
    parts = []
    paddle.distributed.all_gather_object(parts, (values, labels))
    return (np.concatenate([values for values, _ in parts]),
            np.concatenate([labels for _, labels in parts]))


def model_logits(model, forward: Optional[Callable] = None) -> Callable:
    """`logits_fn` for a Paddle model: eval mode, no gradients, float32 NumPy out; `forward`
    (e.g. `model.forward_features`) in place of the whole model."""
    model.eval()
    forward = forward or model

    def logits(images):
        with paddle.no_grad():
            return forward(images).astype("float32").numpy()
    return logits


def collect_outputs(fn: Callable, loader, width: int, progress: Progress = None,
                    stage: str = "evaluating") -> Outputs:
    """`fn` (a batch [B, C, H, W] -> [B, width]) over the batches of `loader`, with the labels
    and positions of the images that could be read."""
    values, labels, indices, skipped = [], [], [], 0
    for done, batch in enumerate(loader, start=1):
        skipped += len(batch["skipped"])
        if batch["images"].shape[0]:
            values.append(np.asarray(fn(batch["images"]), dtype=np.float32))
            labels.append(batch["labels"].numpy())
            indices.append(batch["indices"].numpy())
        if progress:
            progress(stage, done, len(loader))
    if not values:
        empty = np.zeros((0,), dtype=np.int64)
        return Outputs(np.zeros((0, width), np.float32), empty, empty, skipped)
    return Outputs(np.concatenate(values), np.concatenate(labels).astype(np.int64),
                   np.concatenate(indices), skipped)  # labels [N], or [N, K] for multilabel


def evaluate_model(predictor, split: str = "test", output_dir=None, vdl_dir=None,
                   batch_size: int = 128, max_mistakes: int = 24,
                   progress: Progress = None, reference=None) -> dict:
    """Evaluate `predictor` on `split` of its config's data set and write the report files
    (a model of several labels per image: label_report.py's).

    `reference`, a second predictor (the float32 model an int8 one was quantised from), is run
    on the same images and compared: `agreement` in the metrics.

    Returns:
        the metrics dict (also `metrics.json`), with `paths` of the written files,
        `confusion_matrix` as a list of rows and `report` (scikit-learn's text).
    """
    prep = predictor.preprocessing
    names = list(prep.class_names)
    dataset = _split_of_its_data(predictor, split, progress)
    started = time.perf_counter()
    metrics, outputs = evaluate(predictor.logits, build_loader(dataset, batch_size, False),
                                len(names), progress=progress, multilabel=prep.multilabel,
                                thresholds=prep.thresholds)  # recorded, never chosen here
    seconds = time.perf_counter() - started
    metrics.update(split=split, weights=predictor.source,
                   images_per_s=round(len(outputs.labels) / max(seconds, 1e-9), 1))
    if reference is not None:
        theirs = collect_outputs(reference.logits, build_loader(dataset, batch_size, False),
                                 len(names), progress, stage="evaluating the reference")
        metrics["agreement"] = agreement(outputs, theirs, reference.precision, prep)
    if prep.multilabel:
        from .label_report import label_report

        return label_report(metrics, outputs, names, output_dir, vdl_dir)
    return _class_report(metrics, outputs, predictor, dataset, output_dir, vdl_dir, max_mistakes)


def _class_report(metrics: dict, outputs: Outputs, predictor, dataset, output_dir, vdl_dir,
                  max_mistakes: int) -> dict:
    """`metrics` with the per-class figures, the confusion matrix and scikit-learn's report,
    and the files written into `output_dir` (`paths`)."""
    names = list(predictor.preprocessing.class_names)
    logits, labels, kept = outputs.values, outputs.labels, outputs.indices
    metrics.pop("recall")  # per_class holds it, with precision and F1
    metrics.update(_class_scores(logits, labels, names))
    report = classification_report(labels, logits.argmax(1) if len(logits) else labels,
                                   labels=list(range(len(names))), target_names=names, digits=4,
                                   zero_division=0)
    if output_dir is not None:
        metrics["paths"] = _write_report(Path(output_dir), predictor, dataset, metrics, report,
                                         logits, labels, kept, max_mistakes)
        if vdl_dir is not None:
            log_evaluation(vdl_dir, metrics["split"], metrics)
    metrics["report"] = report
    return metrics


def _split_of_its_data(predictor, split: str, progress: Progress):
    """`split` of the data set the predictor's config names, with the predictor's evaluation
    transform; refused unless its classes are the model's."""
    names = list(predictor.preprocessing.class_names)
    # the split alone: the record brings its own normalisation, so no statistics are needed
    data = build_datasets(predictor.config.data, progress)
    if list(data.class_names) != names:
        raise CheckpointError(
            f"the model knows {len(names)} classes ({', '.join(names[:4])}...) but the data set "
            f"has {data.num_classes} ({', '.join(data.class_names[:4])}...)",
            "evaluate on the data set the model was trained on")
    return data.splits[split].with_transform(predictor.preprocessing.eval_transform())


def agreement(mine: Outputs, theirs: Outputs, reference: str, judged_by: Preprocessing) -> dict:
    """How closely two models' logits on the same images agree: the share with the same top-1
    class (multilabel: of the label decisions) and the largest logit difference, over the
    images both could read."""
    _, at_mine, at_theirs = np.intersect1d(mine.indices, theirs.indices, return_indices=True)
    return {"reference": reference, "images": int(len(at_mine)),
            **logit_agreement(mine.values[at_mine], theirs.values[at_theirs],
                              judged_by.multilabel, judged_by.thresholds)}


def _class_scores(logits: np.ndarray, labels: np.ndarray, names) -> dict:
    """Per-class precision, recall and F1, their macro average, and the confusion matrix."""
    classes = list(range(len(names)))
    predictions = logits.argmax(axis=1) if len(labels) else np.zeros(0, dtype=np.int64)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, predictions, labels=classes, zero_division=0)
    return {
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
