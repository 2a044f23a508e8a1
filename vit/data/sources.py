"""Data acquisition: the registry of data sources, the one place their names are listed.

A source turns the `data` config into train/val/test `ImageSet`s (`DataBundle`):
- `digits`: scikit-learn's 1,797 handwritten digits, embedded, no network;
- `digit_mosaics`: 2x2 mosaics of those digits, labelled with the digits shown (multi-label,
  mosaics.py);
- `folder`, `list`: image files on disk (file_sources.py);
- `fractals`: FractalDB-style generated images, as many as asked (fractals.py);
- `cifar10`, `cifar100`, `mnist`, `fashion_mnist`, `flowers102`: the archives that
  `paddle.vision.datasets` reads, from a local copy or downloaded and verified
  (paddle_sources.py).
A new source is one `Source` row in `SOURCES`. Splits a source does not have are carved from its
training images (stratified, seeded); `data.cut_classes` then thins classes of the training
split, and `data.train_fraction` takes a share of it.
"""

import difflib
from dataclasses import dataclass
from typing import Callable, Dict, List

from ..config import DataConfig
from ..errors import ConfigError, DataError, param
from ..progress import Progress
from .datasets import (ArrayImageSet, DataBundle, ImageSet, cut_classes, stratified_indices,
                       take_fraction)
from .fractals import fractal_class_count, fractal_source
from .file_sources import folder_class_count, folder_source, list_class_count, list_source
from .mosaics import DIGIT_NAMES, digit_images, digit_mosaics_source
from .paddle_sources import PADDLE_SOURCES

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Source:
    """A named data source.

    Attributes:
        name: the value of `data.source`.
        description: one line for listings (docs, the web app).
        build: (data config, progress) -> DataBundle, the splits the source itself has.
        count_classes: data config -> the number of classes `build` would find, without
            reading or downloading any image.
    """

    name: str
    description: str
    build: Callable[[DataConfig, Progress], DataBundle]
    count_classes: Callable[[DataConfig], int]


def _known(count: int) -> Callable[[DataConfig], int]:
    return lambda config: count


def _digits(config: DataConfig, progress: Progress = None) -> DataBundle:
    pixels, digits = digit_images()  # [1797, 8, 8]
    images = ArrayImageSet(pixels, digits, DIGIT_NAMES, name="digits")
    return DataBundle("digits", list(DIGIT_NAMES), {"train": images})


SOURCES: Dict[str, Source] = {source.name: source for source in (
    Source("digits", "scikit-learn's 1,797 handwritten digits (8x8, embedded, no download)",
           _digits, _known(10)),
    Source("digit_mosaics", "16x16 mosaics of 2x2 of those digits, labelled with the digits "
           "they show (multi-label; embedded, no download)", digit_mosaics_source, _known(10)),
    Source("folder", "an image folder: root/<class>/<image>, optionally under train/val/test",
           folder_source, folder_class_count),
    Source("list", "PaddleClas list files of 'relative/path.jpg label' lines (or "
           "'path<TAB>0,1,0,1' label vectors), or CSV lists of 'path,label names'", list_source,
           list_class_count),
    Source("fractals", "generated FractalDB-style images: data.fractal_classes random "
           "iterated function systems, data.fractal_per_class images each (no download)",
           fractal_source, fractal_class_count),
    *(Source(s.name, s.description, s.build, _known(s.num_classes)) for s in PADDLE_SOURCES),
)}


def source_names() -> List[str]:
    """The valid values of `data.source`, in registry order."""
    return list(SOURCES)


def get_source(name: str) -> Source:
    """The source called `name`.

    Raises:
        ConfigError: an unknown name, with the closest valid one.
    """
    if name not in SOURCES:
        close = difflib.get_close_matches(name, SOURCES, n=1, cutoff=0.5)
        hint = f"did you mean '{close[0]}'?" if close else f"choose one of {', '.join(SOURCES)}"
        raise ConfigError(f"unknown data.source '{name}'", hint)
    return SOURCES[name]


def build_datasets(config: DataConfig, progress: Progress = None) -> DataBundle:
    """Acquire the configured data set and return its splits, without transforms.

    Args:
        config: the `data` section of the config.
        progress: called as progress(stage, done, total) during long scans and downloads.

    Raises:
        ConfigError: an unknown source name or class name in data.cut_classes, or a source
            whose labels do not fit data.task.
        DataError: for a missing folder or file, a layout that cannot be read, or a label that
            does not fit; the message names the file and the fix.
    """
    bundle = get_source(config.source).build(config, progress)
    _check_task(bundle, config)
    bundle = _carve_missing_splits(bundle, config)
    if config.cut_classes:
        bundle.splits["train"] = _cut_classes(bundle.splits["train"], config)
    bundle.splits["train"] = take_fraction(bundle.splits["train"], config.train_fraction,
                                           config.split_seed)
    if len(bundle.splits["train"]) == 0:
        raise DataError(f"the {config.source} data set has no usable training images",
                        "check data.root and the skipped files in the report")
    return bundle


def _carve_missing_splits(bundle: DataBundle, config: DataConfig) -> DataBundle:
    """Take val and test from train when the source has none, by the configured fractions
    (stratified by class, or for multi-label data by each image's rarest label)."""
    train = bundle.splits["train"]  # every source has one
    missing = [split for split in SPLITS if split not in bundle.splits]
    if not missing:
        return bundle
    fractions = {"val": config.val_fraction, "test": config.test_fraction}
    parts = stratified_indices(train.labels, [None] + [fractions[s] for s in missing],
                               config.split_seed)
    bundle.splits["train"] = train.subset(parts[0])
    for split, indices in zip(missing, parts[1:]):
        bundle.splits[split] = train.subset(indices)
    return bundle


def _check_task(bundle: DataBundle, config: DataConfig):
    """Refuse one class per image where the outputs are to be several labels per image (a
    source of several labels refuses data.task=multiclass itself)."""
    if config.task == "multilabel" and not bundle.splits["train"].multilabel:
        raise ConfigError(f"data.source={config.source} gives one class per image, not the "
                          "label vectors data.task=multilabel trains on",
                          f"set {param('data.task', 'multiclass')}, or use label lists or "
                          f"{param('data.source', 'digit_mosaics')}")


def _cut_classes(train: ImageSet, config: DataConfig) -> ImageSet:
    """The training split with `data.cut_fraction` of each of `data.cut_classes` left."""
    if train.multilabel:
        raise ConfigError("data.cut_classes is not supported on multi-label data (an image "
                          "carries several labels, so one label cannot be cut alone)",
                          f"leave {param('data.cut_classes')} empty")
    index = {name: i for i, name in enumerate(train.class_names)}
    for name in config.cut_classes:
        if name not in index:
            close = difflib.get_close_matches(name, index, n=1, cutoff=0.0)
            listed = ", ".join(train.class_names[:10]) + (", ..." if len(index) > 10 else "")
            raise ConfigError(f"data.cut_classes names '{name}', which is not a class of the "
                              f"{config.source} data set",
                              f"did you mean '{close[0]}'? (the classes: {listed})")
    return cut_classes(train, [index[name] for name in config.cut_classes],
                       config.cut_fraction, config.split_seed)


def count_classes(config: DataConfig) -> int:
    """The number of classes of the configured data set, without reading any image (the
    source answers)."""
    return get_source(config.source).count_classes(config)
