"""Data acquisition: each source turns a `DataConfig` into train/val/test `ImageSet`s.

- `digits`: scikit-learn's 1,797 handwritten digits, embedded, no network.
- `folder`: an ImageFolder tree `root/<class>/*.jpg`, with `train`/`val`/`test` subfolders or not.
- `list`: PaddleClas list files, `relative/path.jpg label` per line.
- `cifar10`, `cifar100`, `mnist`, `fashion_mnist`, `flowers102`: the archives that
  `paddle.vision.datasets` reads, from `data.archive` or downloaded and verified (download.py).

Splits a source does not have are carved from its training images (stratified, seeded). Files
that cannot be used are skipped and listed; mistakes in the layout are refused up front.
"""

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np

from ..config import DataConfig
from ..errors import DataError
from .datasets import ArrayImageSet, FileImageSet, ImageSet, stratified_indices, take_fraction
from .images import UnusableImage, is_image_file, load_image, probe_image

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")
Progress = Optional[Callable[[str, int, int], None]]


@dataclass
class DataBundle:
    """What a source provides: the splits, the class names, and what it could not use."""

    source: str
    class_names: List[str]
    splits: Dict[str, ImageSet]
    skipped: List[dict] = field(default_factory=list)  # {"path", "reason", "split"}
    empty_classes: List[str] = field(default_factory=list)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


def build_datasets(config: DataConfig, progress: Progress = None) -> DataBundle:
    """Acquire the configured data set and return its splits, without transforms.

    Args:
        config: the `data` section of the config.
        progress: called as progress(stage, done, total) during long scans and downloads.

    Raises:
        DataError: for a missing folder or file, a layout that cannot be read, or a label that
            does not fit; the message names the file and the fix.
    """
    builders = {"digits": _digits, "folder": _folder, "list": _list_files}
    builders.update({name: _paddle_vision for name in PADDLE_SOURCES})
    bundle = builders[config.source](config, progress)
    bundle = _carve_missing_splits(bundle, config)
    bundle.splits["train"] = take_fraction(bundle.splits["train"], config.train_fraction,
                                           config.split_seed)
    _check_not_empty(bundle, config)
    return bundle


def _carve_missing_splits(bundle: DataBundle, config: DataConfig) -> DataBundle:
    """Take val and test from train when the source has none, by the configured fractions."""
    train = bundle.splits["train"]
    missing = [split for split in ("val", "test") if split not in bundle.splits]
    if not missing:
        return bundle
    fractions = {"val": config.val_fraction, "test": config.test_fraction}
    parts = stratified_indices(train.labels, [None] + [fractions[s] for s in missing],
                               config.split_seed)
    bundle.splits["train"] = train.subset(parts[0])
    for split, indices in zip(missing, parts[1:]):
        bundle.splits[split] = train.subset(indices)
    return bundle


def _check_not_empty(bundle: DataBundle, config: DataConfig):
    if len(bundle.splits["train"]) == 0:
        raise DataError(f"the {config.source} data set has no usable training images",
                        "check data.root and the skipped files in the report")


# --- digits -----------------------------------------------------------------------------------
def _digits(config: DataConfig, progress: Progress) -> DataBundle:
    from sklearn.datasets import load_digits

    digits = load_digits()
    # 17 grey levels (0-16) scaled to 0-255
    pixels = np.round(digits.images * (255.0 / 16.0)).astype(np.uint8)  # [1797, 8, 8]
    names = [str(n) for n in digits.target_names]
    images = ArrayImageSet(pixels, digits.target, names, name="digits")
    return DataBundle("digits", names, {"train": images})


# --- folders of files ---------------------------------------------------------------------------
SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}


def _folder(config: DataConfig, progress: Progress) -> DataBundle:
    root = _existing_root(config)
    split_dirs = {}
    for split, names in SPLIT_FOLDERS.items():
        found = [root / name for name in names if (root / name).is_dir()]
        if found:
            split_dirs[split] = found[0]
    if "train" not in split_dirs:
        split_dirs = {"train": root}  # root/<class>/...: val and test are carved out
    class_dirs = {split: _class_folders(path) for split, path in split_dirs.items()}
    _check_split_classes(class_dirs)

    train_classes = sorted(class_dirs["train"])
    empty = []
    files_by_split = {}
    for split, folders in class_dirs.items():
        files = []
        for name in sorted(folders):
            found = sorted(p for p in folders[name].rglob("*") if p.is_file()
                           and not p.name.startswith("."))
            if not found and split == "train":
                empty.append(name)
            files += [(path, name) for path in found]
        files_by_split[split] = files
    classes = [name for name in train_classes if name not in empty]
    for name in empty:
        log.warning("class folder '%s' is empty and is left out", class_dirs["train"][name])
    index = {name: i for i, name in enumerate(classes)}
    bundle = DataBundle("folder", classes, {}, empty_classes=empty)
    for split, files in files_by_split.items():
        files = [(path, name) for path, name in files if name in index]
        _add_file_split(bundle, split, [p for p, _ in files], [index[n] for _, n in files],
                        config, progress)
    return bundle


def _existing_root(config: DataConfig) -> Path:
    if not config.root:
        raise DataError(f"data.source={config.source} needs data.root",
                        "set -o data.root=PATH to the folder of the data set")
    root = Path(config.root)
    if not root.is_dir():
        raise DataError(f"data.root '{root}' is not a folder", "check the path")
    return root


def _class_folders(path: Path) -> Dict[str, Path]:
    return {p.name: p for p in sorted(path.iterdir()) if p.is_dir() and not p.name.startswith(".")}


def _check_split_classes(class_dirs: Dict[str, Dict[str, Path]]):
    """Refuse val/test class folders that train lacks: their labels would mean nothing."""
    if not class_dirs["train"]:
        raise DataError("no class folders found", "lay images out as root/<class>/<image> "
                        "or root/train/<class>/<image>")
    train = set(class_dirs["train"])
    for split in ("val", "test"):
        if split in class_dirs:
            extra = sorted(set(class_dirs[split]) - train)
            if extra:
                folder = class_dirs[split][extra[0]]
                raise DataError(f"class folder '{folder}' has no counterpart in the train "
                                f"split ({len(extra)} such: {', '.join(extra[:5])})",
                                "give every split the same class folders")
            missing = sorted(train - set(class_dirs[split]))
            if missing:
                log.warning("the %s split has no folder for %d classes: %s", split,
                            len(missing), ", ".join(missing[:5]))


def _add_file_split(bundle: DataBundle, split: str, paths, labels, config: DataConfig,
                    progress: Progress):
    """Check each file (header, and a full decode with data.verify_images) and keep the good."""
    kept, kept_labels, sizes, formats = [], [], [], []
    total = len(paths)
    for done, (path, label) in enumerate(zip(paths, labels), start=1):
        try:
            if not is_image_file(path):
                raise UnusableImage(path, f"not an image file (extension '{Path(path).suffix}')")
            fmt, width, height = probe_image(path, config.max_image_pixels)
            if config.verify_images:
                load_image(path, config.max_image_pixels)
        except UnusableImage as error:
            log.warning("skipping %s: %s", error.path, error.reason)
            bundle.skipped.append({"path": error.path, "reason": error.reason, "split": split})
        else:
            kept.append(path)
            kept_labels.append(label)
            sizes.append((width, height))
            formats.append(fmt)
        if progress and (done % 200 == 0 or done == total):
            progress(f"checking {split} images", done, total)
    bundle.splits[split] = FileImageSet(kept, kept_labels, bundle.class_names,
                                        max_pixels=config.max_image_pixels, sizes=sizes,
                                        formats=formats)


# --- PaddleClas list files ----------------------------------------------------------------------
def _list_files(config: DataConfig, progress: Progress) -> DataBundle:
    root = _existing_root(config)
    if not config.train_list:
        raise DataError("data.source=list needs data.train_list",
                        "set -o data.train_list=FILE (lines of 'relative/path.jpg label')")
    lists = {"train": config.train_list, "val": config.val_list, "test": config.test_list}
    entries = {split: _read_list(_resolve(root, path), split)
               for split, path in lists.items() if path}
    if config.label_names:
        names_file = _resolve(root, config.label_names)
        if not names_file.is_file():
            raise DataError(f"data.label_names '{names_file}' does not exist", "check the path")
        class_names = [line.strip() for line in names_file.read_text(encoding="utf-8").splitlines()
                       if line.strip()]
    else:
        top = max(label for rows in entries.values() for _, label, _ in rows)
        class_names = [str(i) for i in range(top + 1)]
    bundle = DataBundle("list", class_names, {})
    for split, rows in entries.items():
        paths, labels = [], []
        for relative, label, where in rows:
            if label >= len(class_names):
                raise DataError(f"{where}: label {label} is out of range for "
                                f"{len(class_names)} classes", "fix the label or "
                                "data.label_names (line i names label i)")
            path = root / relative
            if not path.is_file():
                log.warning("skipping %s: listed at %s but missing", path, where)
                bundle.skipped.append({"path": str(path), "reason": f"listed at {where} but "
                                       "missing", "split": split})
                continue
            paths.append(path)
            labels.append(label)
        _add_file_split(bundle, split, paths, labels, config, progress)
    return bundle


def _resolve(root: Path, path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() or candidate.exists() else root / candidate


def _read_list(path: Path, split: str):
    """Rows (relative path, label, "file:line") of a PaddleClas list file."""
    if not path.is_file():
        raise DataError(f"data.{split}_list '{path}' does not exist", "check the path")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.rsplit(maxsplit=1)  # file names may contain spaces; the label cannot
        where = f"{path}:{number}"
        if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
            raise DataError(f"{where}: expected 'relative/path.jpg label', got '{line.strip()}'",
                            "write one image path and an integer label per line")
        label = int(parts[1])
        if label < 0:
            raise DataError(f"{where}: label {label} is negative", "labels count from 0")
        rows.append((parts[0], label, where))
    if not rows:
        raise DataError(f"data.{split}_list '{path}' is empty", "list at least one image")
    return rows


# --- paddle.vision archives ----------------------------------------------------------------------
from .paddle_sources import PADDLE_SOURCES, load_paddle_source  # noqa: E402


def _paddle_vision(config: DataConfig, progress: Progress) -> DataBundle:
    root = Path(config.root or os.path.join("data", config.source))
    return load_paddle_source(config, root, progress)


KNOWN_CLASS_COUNTS = {"digits": 10, "cifar10": 10, "cifar100": 100, "mnist": 10,
                      "fashion_mnist": 10, "flowers102": 102}


def count_classes(config: DataConfig) -> int:
    """The number of classes of the configured data set, without reading any image."""
    if config.source in KNOWN_CLASS_COUNTS:
        return KNOWN_CLASS_COUNTS[config.source]
    root = _existing_root(config)
    if config.source == "folder":
        base = root / "train" if (root / "train").is_dir() else root
        return sum(1 for p in base.iterdir() if p.is_dir() and not p.name.startswith(".")
                   and any(p.iterdir()))
    if config.label_names:
        return sum(1 for line in _resolve(root, config.label_names).read_text(
            encoding="utf-8").splitlines() if line.strip())
    return max(label for _, label, _ in _read_list(_resolve(root, config.train_list), "train")) + 1
