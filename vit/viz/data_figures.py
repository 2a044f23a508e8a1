"""Figures of a data set: class histogram per split, image-size histogram, and sample grids
before and after preprocessing."""

from typing import Dict, Optional, Sequence

import numpy as np
from matplotlib.figure import Figure

from ..data.datasets import ImageSet
from ..data.images import UnusableImage
from ..data.transforms import denormalize

MAX_CLASSES_SHOWN = 20


def plot_class_histogram(stats: dict) -> Figure:
    """Images per class, one bar per split side by side."""
    names = stats["class_names"]
    splits = stats["splits"]
    figure = Figure(figsize=(max(6.0, 0.45 * len(names) + 2), 4.0))
    axes = figure.add_subplot()
    width = 0.8 / max(len(splits), 1)
    positions = np.arange(len(names))
    for offset, (split, info) in enumerate(splits.items()):
        counts = [info["per_class"][name] for name in names]
        axes.bar(positions + (offset - (len(splits) - 1) / 2) * width, counts, width,
                 label=f"{split} ({info['num_images']:,})")
    axes.set_xticks(positions)
    axes.set_xticklabels(names, rotation=90 if len(names) > 12 else 0, fontsize=8)
    axes.set_xlabel("class")
    axes.set_ylabel("images")
    axes.set_title(f"Images per class — {stats['source']}")
    axes.set_ylim(0, max(max(info["per_class"].values(), default=0) for info in splits.values()) * 1.3 + 1)
    axes.legend(ncol=len(splits), loc="upper center")
    return figure


def plot_image_sizes(sizes: Dict[str, np.ndarray], source: str = "") -> Figure:
    """Histograms of image width and height over all splits (pixels, before preprocessing)."""
    figure = Figure(figsize=(9.0, 3.6))
    for column, axis_name in enumerate(("width", "height")):
        axes = figure.add_subplot(1, 2, column + 1)
        for split, values in sizes.items():
            if len(values):
                axes.hist(values[:, column], bins=30, alpha=0.6, label=split)
        axes.set_xlabel(f"{axis_name} (pixels)")
        axes.set_ylabel("images")
        axes.legend()
    figure.suptitle(f"Image sizes — {source}")
    return figure


def sample_indices(dataset: ImageSet, per_class: int, seed: int = 0) -> Dict[int, np.ndarray]:
    """Up to `per_class` seeded image indices of each of the first classes."""
    rng = np.random.default_rng(seed)
    chosen = {}
    for label in range(min(len(dataset.class_names), MAX_CLASSES_SHOWN)):
        members = np.flatnonzero(dataset.labels == label)
        if len(members):
            chosen[label] = np.sort(rng.choice(members, min(per_class, len(members)), replace=False))
    return chosen


def plot_samples(dataset: ImageSet, chosen: Dict[int, np.ndarray], title: str,
                 transform=None, mean: Optional[Sequence[float]] = None,
                 std: Optional[Sequence[float]] = None) -> Figure:
    """A grid with one row per class: the raw images, or with `transform` what the model sees
    (normalisation undone for display)."""
    rows = max(len(chosen), 1)
    columns = max((len(v) for v in chosen.values()), default=1)
    figure = Figure(figsize=(1.2 * columns + 1.5, 1.2 * rows + 0.6))
    for row, (label, indices) in enumerate(chosen.items()):
        for column, index in enumerate(indices):
            axes = figure.add_subplot(rows, columns, row * columns + column + 1)
            axes.set_xticks([])
            axes.set_yticks([])
            if column == 0:
                axes.set_ylabel(dataset.class_names[label][:14], rotation=0, ha="right",
                                va="center", fontsize=8)
            try:
                image = dataset.load(int(index))
            except UnusableImage:
                continue
            if transform is not None:
                image = denormalize(transform(image), mean, std)
            axes.imshow(np.asarray(image), interpolation="nearest")
    figure.suptitle(title)
    return figure
