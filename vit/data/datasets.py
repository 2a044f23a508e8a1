"""Datasets: images with labels and class names, split and subset the same way for every source.

An `ImageSet` yields `(image, label)` with the transform applied; the label is a class index, or
on multi-label data (`data.task: multilabel`) a 0/1 vector with one entry per label. An image
that turns out unusable while training is not replaced by another sample: it comes back as
`Skipped`, and `collate_skipping` drops it from the batch and reports its name
(docs/datasets.md).
"""

import copy
import logging
import random
from dataclasses import dataclass, field
from typing import Dict, List, Sequence

import numpy as np
import paddle
from PIL import Image

from .images import UnusableImage, load_image, probe_image, to_rgb

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Skipped:
    """Stands in a batch for an image that could not be read, so it is dropped, not swapped."""

    name: str
    reason: str


class ImageSet(paddle.io.Dataset):
    """Labelled images of one split; subclasses say how image `i` is loaded.

    Attributes:
        items: one entry per image (a path, or the pixels), indexable by a numpy index array.
        labels: int64 class indices [N], or for multi-label data a 0/1 matrix [N, K] (K label
            names; row i marks the labels image i carries).
        class_names: name of each class index (of each label column).
        transform: applied to each RGB `PIL.Image` (None returns the image itself).
    """

    def __init__(self, items, labels, class_names: Sequence[str], transform=None):
        super().__init__()
        self.items = items
        self.labels = np.asarray(labels, dtype=np.int64)
        self.class_names = list(class_names)
        self.transform = transform

    def __len__(self):
        return len(self.labels)

    def load(self, index: int) -> Image.Image:
        """The RGB image `index`; raises `UnusableImage` when it cannot be read."""
        raise NotImplementedError

    def describe(self, index: int) -> str:
        """A name for image `index` that a user can find (a path, or source/index)."""
        raise NotImplementedError

    def __getitem__(self, index):
        """`index`, or (index, seed) from `EpochBatchSampler`: the seed fixes the random
        augmentation of this image, whichever worker draws it and whenever."""
        if isinstance(index, tuple):
            index, seed = index
            random.seed(seed)
            np.random.seed(seed)
        try:
            image = self.load(index)
        except UnusableImage as error:
            return Skipped(self.describe(index), error.reason)
        if self.transform is not None:
            image = self.transform(image)
        return image, self.labels[index], index

    def subset(self, indices) -> "ImageSet":
        """The images at `indices` (same class names and transform)."""
        indices = np.asarray(indices, dtype=np.int64)
        part = copy.copy(self)
        for name in self._per_image:
            setattr(part, name, getattr(self, name)[indices])
        return part

    _per_image = ("items", "labels")  # attributes with one entry per image

    def sizes_and_formats(self):
        """(sizes [N, 2] as width, height; format name -> count) of the stored images."""
        raise NotImplementedError

    def with_transform(self, transform) -> "ImageSet":
        """The same images with another transform."""
        other = copy.copy(self)
        other.transform = transform
        return other

    @property
    def multilabel(self) -> bool:
        """Whether each image carries a 0/1 vector of labels rather than one class."""
        return self.labels.ndim == 2

    def class_counts(self) -> np.ndarray:
        """Images per class; for multi-label data, the images carrying each label."""
        if self.multilabel:
            return self.labels.sum(axis=0)
        return np.bincount(self.labels, minlength=len(self.class_names))


class FileImageSet(ImageSet):
    """Images stored as files; `items` is an array of paths.

    `sizes` ([N, 2] width, height) and `formats` come from the scan that checked the files;
    without them they are read from the file headers when first asked for.
    """

    _per_image = ("items", "labels", "sizes", "formats")

    def __init__(self, paths, labels, class_names, transform=None, max_pixels=89_478_485,
                 sizes=None, formats=None):
        super().__init__(np.asarray([str(p) for p in paths], dtype=object), labels, class_names,
                         transform)
        self.max_pixels = max_pixels
        if sizes is None or formats is None:
            sizes, formats = self._probe_all()
        self.sizes = np.asarray(sizes, dtype=np.int64).reshape(-1, 2)
        self.formats = np.asarray(formats, dtype=object)

    def _probe_all(self):
        sizes, formats = [], []
        for path in self.items:
            try:
                fmt, width, height = probe_image(path, self.max_pixels)
            except UnusableImage:
                fmt, width, height = "unreadable", 0, 0
            sizes.append((width, height))
            formats.append(fmt)
        return sizes, formats

    def sizes_and_formats(self):
        names, counts = np.unique(self.formats.astype(str), return_counts=True)
        return self.sizes, {str(n): int(c) for n, c in zip(names, counts)}

    def load(self, index):
        return load_image(self.items[index], self.max_pixels)

    def describe(self, index):
        return str(self.items[index])


class ArrayImageSet(ImageSet):
    """Images held in memory as uint8 arrays [N, H, W] or [N, H, W, C] (digits, CIFAR, MNIST)."""

    def __init__(self, pixels: np.ndarray, labels, class_names, transform=None, name="images"):
        if pixels.dtype != np.uint8:
            raise TypeError(f"pixels must be uint8, got {pixels.dtype}")
        super().__init__(pixels, labels, class_names, transform)
        self.name = name
        self.positions = np.arange(len(pixels))  # original indices, for naming after a subset

    _per_image = ("items", "labels", "positions")

    def load(self, index):
        return to_rgb(Image.fromarray(self.items[index]))

    def sizes_and_formats(self):
        height, width = self.items.shape[1:3]
        return np.tile([width, height], (len(self), 1)), {"array": len(self)}

    def describe(self, index):
        return f"{self.name}[{self.positions[index]}]"


@dataclass
class DataBundle:
    """What a data source provides: the splits, the class names, and what it could not use."""

    source: str
    class_names: List[str]
    splits: Dict[str, ImageSet]
    skipped: List[dict] = field(default_factory=list)  # {"path", "reason", "split"}
    empty_classes: List[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def collate_skipping(batch):
    """Stack a batch, leaving out `Skipped` samples and reporting their names.

    Returns:
        dict with `images` float32 [B, C, H, W], `labels` int64 [B] (multi-label: [B, K]),
        `indices` int64 [B] (the images' positions in the dataset) and `skipped`, a list of
        [name, reason] pairs (empty when nothing was dropped).
    """
    kept = [sample for sample in batch if not isinstance(sample, Skipped)]
    skipped = [[s.name, s.reason] for s in batch if isinstance(s, Skipped)]
    for name, reason in skipped:
        log.warning("skipped unreadable image %s: %s", name, reason)
    if not kept:
        empty = np.zeros((0,), dtype=np.int64)
        return {"images": np.zeros((0,), dtype=np.float32), "labels": empty, "indices": empty,
                "skipped": skipped}
    images = np.stack([np.asarray(image, dtype=np.float32) for image, _, _ in kept])
    labels = np.stack([np.asarray(label, dtype=np.int64) for _, label, _ in kept])
    indices = np.asarray([index for _, _, index in kept], dtype=np.int64)
    return {"images": images, "labels": labels, "indices": indices, "skipped": skipped}


def stratified_indices(labels: np.ndarray, fractions: Sequence[float], seed: int) -> List[np.ndarray]:
    """Split indices into parts of the given fractions with every class in proportion.

    `fractions` are shares of the whole for all parts but the first, which takes the rest:
    `stratified_indices(y, [None, 0.1, 0.2], 0)` returns train (70 %), val (10 %), test (20 %).
    Each part gets round(share x total) images, shared out over the classes by largest
    remainder, so every class keeps its proportion; the split depends only on the labels and
    the seed. Multi-label `labels` [N, K] are split by `stratification_keys`.
    """
    labels = stratification_keys(labels)
    classes, counts = np.unique(labels, return_counts=True)
    shares = [0.0 if f is None else float(f) for f in fractions]
    quotas = np.zeros((len(classes), len(shares)), dtype=np.int64)
    for part in range(1, len(shares)):
        exact = counts * shares[part]
        quotas[:, part] = np.floor(exact)
        room = counts - quotas.sum(axis=1)
        deficit = int(round(shares[part] * len(labels))) - int(quotas[:, part].sum())
        for cls in np.argsort(-(exact - np.floor(exact)), kind="stable"):
            if deficit <= 0:
                break
            if room[cls] > 0:
                quotas[cls, part] += 1
                deficit -= 1
    rng = np.random.default_rng(seed)
    parts = [[] for _ in shares]
    for row, cls in enumerate(classes):
        members = np.flatnonzero(labels == cls)
        rng.shuffle(members)
        start = 0
        for part in range(1, len(shares)):
            parts[part].extend(members[start:start + quotas[row, part]])
            start += quotas[row, part]
        parts[0].extend(members[start:])
    return [np.sort(np.asarray(part, dtype=np.int64)) for part in parts]


def stratification_keys(labels: np.ndarray) -> np.ndarray:
    """One stratum per image: its class, or for multi-label `labels` [N, K] its rarest label.

    A simple stratification of multi-label data (not iterative stratification): each image
    counts as a member of the least common of its labels (over the whole of `labels`, the lower
    index on a tie), so rare labels are shared out between the parts in proportion; images
    without any label form one stratum of their own (-1). It depends only on the labels.
    """
    labels = np.asarray(labels)
    if labels.ndim == 1:
        return labels
    carried = labels > 0
    rarity = np.where(carried, labels.sum(axis=0)[None, :], np.iinfo(np.int64).max)
    return np.where(carried.any(axis=1), rarity.argmin(axis=1), -1)


def take_fraction(dataset: ImageSet, fraction: float, seed: int) -> ImageSet:
    """A stratified `fraction` of `dataset`, keeping at least one image of every class (every
    label) present (the data-scaling experiments train on growing fractions of one split)."""
    if fraction >= 1.0:
        return dataset
    keep, _ = stratified_indices(dataset.labels, [None, 1.0 - fraction], seed)
    labels = dataset.labels
    if dataset.multilabel:
        carried = labels > 0
        missing = np.flatnonzero(carried.any(axis=0) & ~carried[keep].any(axis=0))
        extra = [np.flatnonzero(carried[:, label])[0] for label in missing]
    else:
        missing = np.setdiff1d(np.unique(labels), labels[keep])
        extra = [np.flatnonzero(labels == cls)[0] for cls in missing]
    # two missing labels may name the same first image: keep it once
    return dataset.subset(np.unique(np.concatenate([keep, np.asarray(extra, dtype=np.int64)])))


def cut_classes(dataset: ImageSet, classes: Sequence[int], fraction: float,
                seed: int) -> ImageSet:
    """`dataset` with only a seeded `fraction` (at least one image) of each of `classes` left,
    the other classes whole: an imbalanced training split made from a balanced one."""
    rng = np.random.default_rng(seed)
    dropped = []
    for cls in sorted(set(classes)):
        members = np.flatnonzero(dataset.labels == cls)
        kept = max(1, int(round(fraction * len(members))))
        dropped.append(rng.permutation(members)[kept:])
    dropped = np.concatenate([np.zeros(0, dtype=np.int64), *dropped])
    return dataset.subset(np.setdiff1d(np.arange(len(dataset)), dropped))
