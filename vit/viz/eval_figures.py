"""Evaluation figures: the confusion matrix (counts and row-normalised) and the most confident
mistakes."""

from typing import List, Sequence

import numpy as np
from matplotlib.figure import Figure

# Cell numbers are written only while they stay legible; beyond this many classes the colour
# carries the information and the axes keep every class name in a small font.
MAX_CLASSES_WITH_NUMBERS = 20


def plot_confusion_matrix(matrix: np.ndarray, class_names: Sequence[str],
                          title: str = "Confusion matrix") -> Figure:
    """Counts (left) and rows normalised to recall (right); rows are true classes."""
    count = len(class_names)
    side = min(max(4.5, 0.22 * count + 3.0), 26.0)
    figure = Figure(figsize=(2 * side + 1.5, side + 0.8))
    rows = matrix.sum(axis=1, keepdims=True)
    normalised = np.divide(matrix, rows, out=np.zeros_like(matrix, dtype=float), where=rows > 0)
    font = max(3.0, min(9.0, 220.0 / max(count, 1)))
    for column, (values, label, fmt) in enumerate(((matrix, "images", "d"),
                                                  (normalised, "share of the true class", ".2f"))):
        axes = figure.add_subplot(1, 2, column + 1)
        image = axes.imshow(values, cmap="Blues", vmin=0, interpolation="nearest")
        figure.colorbar(image, ax=axes, fraction=0.046, pad=0.04, label=label)
        axes.set_xticks(range(count))
        axes.set_yticks(range(count))
        axes.set_xticklabels(class_names, rotation=90, fontsize=font)
        axes.set_yticklabels(class_names, fontsize=font)
        axes.set_xlabel("predicted class")
        axes.set_ylabel("true class")
        axes.set_title("counts" if column == 0 else "row-normalised (recall on the diagonal)")
        if count <= MAX_CLASSES_WITH_NUMBERS:
            threshold = values.max() / 2 if values.size else 0
            for i in range(count):
                for j in range(count):
                    if values[i, j]:
                        axes.text(j, i, format(values[i, j], fmt), ha="center", va="center",
                                  fontsize=font, color="white" if values[i, j] > threshold else "black")
    figure.suptitle(f"{title} — {int(matrix.sum()):,} images")
    figure.subplots_adjust(wspace=0.35)
    return figure


def plot_mistakes(images: List[np.ndarray], true_names: Sequence[str],
                  predicted_names: Sequence[str], confidences: Sequence[float],
                  title: str = "Most confident mistakes") -> Figure:
    """A grid of misclassified images (uint8 HWC) with true and predicted class."""
    count = max(len(images), 1)
    columns = min(count, 6)
    rows = -(-count // columns)
    figure = Figure(figsize=(2.1 * columns, 2.4 * rows + 0.5))
    for index, image in enumerate(images):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(image, interpolation="nearest")
        axes.set_xticks([])
        axes.set_yticks([])
        axes.set_title(f"true {true_names[index][:14]}\npred {predicted_names[index][:14]} "
                       f"({confidences[index]:.0%})", fontsize=8)
    if not images:
        axes = figure.add_subplot()
        axes.axis("off")
        axes.text(0.5, 0.5, "no mistakes", ha="center", va="center")
    figure.suptitle(title)
    return figure


# Beyond this many labels the legend would hide the curves; the title says the mAP instead.
MAX_LABELS_IN_LEGEND = 20


def plot_precision_recall(curves: Sequence, title: str = "Precision-recall per label") -> Figure:
    """One precision-recall curve per label, each with the point its threshold gives; `curves`
    holds (name, precision, recall, average precision, (recall, precision) at the threshold)."""
    figure = Figure(figsize=(7.0, 5.6))
    axes = figure.add_subplot()
    for index, (name, precision, recall, average, point) in enumerate(curves):
        color = f"C{index % 10}"
        axes.step(recall, precision, where="post", color=color, linewidth=1.2,
                  label=f"{name} (AP {average:.3f})")
        axes.plot(*point, "o", color=color, markersize=5)
    aps = [average for _, _, _, average, _ in curves]
    axes.set(xlabel="recall", ylabel="precision", xlim=(0, 1.01), ylim=(0, 1.02),
             title=f"{title}\nmAP {np.mean(aps) if aps else 0:.4f}; dots: each label's threshold")
    axes.grid(alpha=0.3)
    if 0 < len(curves) <= MAX_LABELS_IN_LEGEND:
        axes.legend(fontsize=7, loc="lower left", ncol=2)
    return figure
