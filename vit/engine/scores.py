"""The figures an evaluation reports, from a model's outputs and the true labels.

- multiclass (`class_score_sums`, `class_scores`): cross-entropy, top-1, top-5 and balanced
  accuracy (the mean of the per-class recalls, over the classes present: scikit-learn's
  `balanced_accuracy_score`). They are built from sums, so ranks under data parallelism add
  theirs before the figures are taken.
- multilabel (`label_scores`): binary cross-entropy, mAP (the mean over labels with a positive
  of scikit-learn's average precision), and at one probability threshold per label the
  per-label precision, recall and F1, the exact-match ratio (every label of an image right)
  and the Hamming loss (the share of wrong label decisions). Thresholds not given are chosen
  here (`choose_thresholds`): those of the validation split are recorded with the model and
  used on every other split.
"""

from typing import Optional, Sequence

import numpy as np
from sklearn.metrics import average_precision_score, precision_recall_curve, precision_recall_fscore_support

TOP_K = 5
# A label that has no positive among the images its threshold is chosen on keeps this one.
DEFAULT_THRESHOLD = 0.5


def class_score_sums(logits: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
    """[cross-entropy sum, top-1 hits, top-5 hits, images, top-1 hits per class (K), images
    per class (K)], float64, so ranks can add them. Ties between logits go to the lower class
    index, as `argmax` does."""
    count = len(labels)
    sums = np.zeros(4 + 2 * num_classes)
    if not count:
        return sums
    top = np.argsort(-logits, axis=1, kind="stable")[:, :min(TOP_K, logits.shape[1])]
    log_probabilities = np.log(np.clip(softmax(logits), 1e-300, None))
    hits = top[:, 0] == labels
    sums[:4] = [-log_probabilities[np.arange(count), labels].sum(), hits.sum(),
                (top == labels[:, None]).any(1).sum(), count]
    sums[4:4 + num_classes] = np.bincount(labels[hits], minlength=num_classes)
    sums[4 + num_classes:] = np.bincount(labels, minlength=num_classes)
    return sums


def class_scores(sums: np.ndarray, num_classes: int) -> dict:
    """`task`, `loss`, `top1`, `top5`, `balanced_accuracy`, `recall` (per class; None for a
    class without images) and `num_samples`, from (added) `class_score_sums`."""
    count = max(sums[3], 1)
    hits, images = sums[4:4 + num_classes], sums[4 + num_classes:]
    recall = [float(h / n) if n else None for h, n in zip(hits, images)]
    present = [r for r in recall if r is not None]
    return {"task": "multiclass", "loss": float(sums[0] / count), "top1": float(sums[1] / count),
            "top5": float(sums[2] / count),
            "balanced_accuracy": float(np.mean(present)) if present else 0.0,
            "recall": recall, "num_samples": int(sums[3])}


def label_scores(logits: np.ndarray, labels: np.ndarray,
                 thresholds: Optional[Sequence[float]] = None) -> dict:
    """The multilabel figures of `logits` [N, K] against 0/1 `labels` [N, K]: `loss`, `map`,
    `exact_match`, `hamming_loss`, `num_samples`, `thresholds` (given, empty for 0.5 each, or
    None to choose them on these images) and per label `average_precision`, `precision`,
    `recall`, `f1` and `support`."""
    num_labels = logits.shape[1]
    probabilities = sigmoid(logits)
    chosen = (choose_thresholds(probabilities, labels) if thresholds is None
              else label_cuts(thresholds, num_labels))
    if not len(labels):
        return {"task": "multilabel", "loss": 0.0, "map": 0.0, "exact_match": 0.0,
                "hamming_loss": 0.0, "num_samples": 0,
                "thresholds": [round(float(t), 6) for t in chosen],
                **{key: [None if key == "average_precision" else 0] * num_labels
                   for key in ("average_precision", "precision", "recall", "f1", "support")}}
    decisions = (probabilities >= chosen).astype(np.int64)
    precision, recall, f1, support = precision_recall_fscore_support(
        labels, decisions, average=None, labels=list(range(num_labels)), zero_division=0)
    average = [float(average_precision_score(labels[:, k], probabilities[:, k]))
               if labels[:, k].any() else None for k in range(num_labels)]
    scored = [a for a in average if a is not None]
    return {"task": "multilabel", "loss": binary_cross_entropy(logits, labels),
            "map": float(np.mean(scored)) if scored else 0.0,
            "exact_match": float((decisions == labels).all(axis=1).mean()),
            "hamming_loss": float((decisions != labels).mean()),
            "num_samples": int(len(labels)), "thresholds": [round(float(t), 6) for t in chosen],
            "average_precision": average, "precision": precision.tolist(),
            "recall": recall.tolist(), "f1": f1.tolist(), "support": support.tolist()}


def choose_thresholds(probabilities: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per label, the probability threshold with the highest F1 on these images: halfway
    between the lowest probability it counts as positive and the next lower one, so that an
    image scored a little below on another split is judged alike; `DEFAULT_THRESHOLD` for a
    label without a positive here."""
    chosen = np.full(probabilities.shape[1], DEFAULT_THRESHOLD)
    for k in range(probabilities.shape[1]):
        if not labels[:, k].any():
            continue
        precision, recall, cuts = precision_recall_curve(labels[:, k], probabilities[:, k])
        f1 = 2 * precision[:-1] * recall[:-1] / np.maximum(precision[:-1] + recall[:-1], 1e-12)
        cut = cuts[int(np.argmax(f1))]
        below = probabilities[:, k][probabilities[:, k] < cut]
        chosen[k] = (cut + below.max()) / 2 if len(below) else cut
    return chosen


def label_decisions(logits: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """0/1 [N, K]: the labels whose probability reaches their threshold (0.5 where none)."""
    return (sigmoid(logits) >= label_cuts(thresholds, logits.shape[1])).astype(np.int64)


def label_cuts(thresholds: Sequence[float], num_labels: int) -> np.ndarray:
    """Each label's probability threshold [K]: those recorded, or `DEFAULT_THRESHOLD` for
    each label where none are (an empty record)."""
    if not len(thresholds):
        return np.full(num_labels, DEFAULT_THRESHOLD)
    return np.asarray(thresholds, dtype=np.float64)


def binary_cross_entropy(logits: np.ndarray, labels: np.ndarray) -> float:
    """The mean over images and labels of BCE with logits, computed stably in float64."""
    if not len(labels):
        return 0.0
    x = np.asarray(logits, dtype=np.float64)
    return float(np.mean(np.maximum(x, 0) - x * labels + np.log1p(np.exp(-np.abs(x)))))


def output_probabilities(logits: np.ndarray, multilabel: bool) -> np.ndarray:
    """What a model's logits [N, K] say per output: class probabilities (softmax), or each
    label's own probability (sigmoid) for a model of several labels per image."""
    return sigmoid(logits) if multilabel else softmax(logits)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    """Per-label probabilities from logits, in float64."""
    x = np.asarray(logits, dtype=np.float64)
    return np.exp(-np.logaddexp(0.0, -x))


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from logits [N, K], computed stably in float64."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)
