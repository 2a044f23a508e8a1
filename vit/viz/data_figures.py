"""Figures of a data set: class histogram per split, image-size histogram, and sample grids
before and after preprocessing."""

from typing import Dict, List, Optional

import numpy as np
from matplotlib.figure import Figure


def plot_class_histogram(stats: dict) -> Figure:
    """Images per class, one bar per split side by side (multi-label data: the images
    carrying each label)."""
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
    unit = "label" if stats.get("task") == "multilabel" else "class"
    axes.set_xlabel(unit)
    axes.set_ylabel("images")
    axes.set_title(f"Images per {unit} — {stats['source']}")
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


def plot_samples(rows: Dict[str, List[Optional[np.ndarray]]], title: str) -> Figure:
    """A grid with one row per class of uint8 [H, W, 3] images (`vit.data.samples.sample_grid`);
    None leaves a cell empty."""
    columns = max((len(images) for images in rows.values()), default=1) or 1
    figure = Figure(figsize=(1.2 * columns + 1.5, 1.2 * max(len(rows), 1) + 0.6))
    for row, (name, images) in enumerate(rows.items()):
        for column, image in enumerate(images):
            axes = figure.add_subplot(max(len(rows), 1), columns, row * columns + column + 1)
            axes.set_xticks([])
            axes.set_yticks([])
            if column == 0:
                axes.set_ylabel(name[:14], rotation=0, ha="right", va="center", fontsize=8)
            if image is not None:
                axes.imshow(image, interpolation="nearest")
    figure.suptitle(title)
    return figure
