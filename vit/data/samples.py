"""Sample images for looking at a data set: a seeded few per class, as stored or as the model
sees them. The figures (vit.viz.data_figures) receive these arrays and load nothing."""

from typing import Dict, List, Optional, Sequence

import numpy as np

from .datasets import ImageSet
from .images import UnusableImage
from .transforms import denormalize

MAX_CLASSES_SHOWN = 20


def sample_indices(dataset: ImageSet, per_class: int, seed: int = 0,
                   max_classes: int = MAX_CLASSES_SHOWN) -> Dict[int, np.ndarray]:
    """Up to `per_class` seeded image indices of each of the first `max_classes` classes; on
    multi-label data an image is a sample of its first label, so it is shown once."""
    rng = np.random.default_rng(seed)
    classes = dataset.labels
    if dataset.multilabel:  # the first label carried, -1 for an image without labels
        classes = np.where(dataset.labels.any(axis=1), dataset.labels.argmax(axis=1), -1)
    chosen = {}
    for label in range(min(len(dataset.class_names), max_classes)):
        members = np.flatnonzero(classes == label)
        if len(members):
            chosen[label] = np.sort(rng.choice(members, min(per_class, len(members)),
                                               replace=False))
    return chosen


def sample_grid(dataset: ImageSet, chosen: Dict[int, np.ndarray], transform=None,
                mean: Optional[Sequence[float]] = None,
                std: Optional[Sequence[float]] = None) -> Dict[str, List[Optional[np.ndarray]]]:
    """The chosen images as uint8 [H, W, 3] arrays, one row per class name.

    With `transform` (a pipeline ending in normalisation) each image is what the model sees,
    with the normalisation undone by `mean`/`std` for display. An unreadable image is None.
    """
    rows = {}
    for label, indices in chosen.items():
        row = []
        for index in indices:
            try:
                image = dataset.load(int(index))
            except UnusableImage:
                row.append(None)
                continue
            row.append(denormalize(transform(image), mean, std) if transform is not None
                       else np.asarray(image))
        rows[dataset.class_names[label]] = row
    return rows
