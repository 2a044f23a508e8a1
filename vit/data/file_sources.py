"""Data sets made of image files: an ImageFolder tree (`folder`) and list files (`list`:
PaddleClas's text lists or CSV lists, read by list_files.py and csv_lists.py).

Every file is checked once when the data set is built (its header, and a full decode with
`data.verify_images`); files that cannot be used are skipped and listed, never replaced, and
mistakes in the layout are refused up front with the path and the fix (docs/datasets.md).
"""

import logging
from pathlib import Path
from typing import Dict, List

import numpy as np

from ..config import DataConfig
from ..errors import DataError, param
from ..progress import Progress
from .datasets import DataBundle, FileImageSet
from .csv_lists import read_csv_list
from .images import UnusableImage, is_image_file, load_image, probe_image
from .list_files import ListRow, encode_labels, list_label_names, read_text_list

log = logging.getLogger(__name__)


# split -> the folder names it may have; the splits are `sources.SPLITS` (which imports this
# module, so it cannot import them: tests/test_data_sources.py checks that the keys agree)
SPLIT_FOLDERS = {"train": ("train",), "val": ("val", "valid", "validation"), "test": ("test",)}


def folder_source(config: DataConfig, progress: Progress = None) -> DataBundle:
    """An ImageFolder tree: `root/<class>/<image>`, or `root/{train,val,test}/<class>/<image>`."""
    files_by_split, classes, empty = _folder_layout(config)
    for folder in empty:
        log.warning("class folder '%s' is empty and is left out", folder)
    index = {name: i for i, name in enumerate(classes)}
    bundle = DataBundle("folder", classes, {}, empty_classes=[p.name for p in empty])
    for split, files in files_by_split.items():
        files = [(path, name) for path, name in files if name in index]
        _add_file_split(bundle, split, [p for p, _ in files], [index[n] for _, n in files],
                        config, progress)
    return bundle


def folder_class_count(config: DataConfig) -> int:
    """The classes `folder_source` would find, from the file names alone (nothing decoded)."""
    return len(_folder_layout(config)[1])


def _folder_layout(config: DataConfig):
    """(split -> [(file, class name)], the classes, the train class folders without a visible
    file, which are left out). Hidden files (`.DS_Store`) are not images of a class."""
    root = existing_root(config)
    split_dirs = {}
    for split, names in SPLIT_FOLDERS.items():
        found = [root / name for name in names if (root / name).is_dir()]
        if found:
            split_dirs[split] = found[0]
    if "train" not in split_dirs:
        split_dirs = {"train": root}  # root/<class>/...: val and test are carved out
    class_dirs = {split: _class_folders(path) for split, path in split_dirs.items()}
    _check_split_classes(class_dirs)
    empty, files_by_split = [], {}
    for split, folders in class_dirs.items():
        files = []
        for name in sorted(folders):
            found = sorted(p for p in folders[name].rglob("*") if p.is_file()
                           and not p.name.startswith("."))
            if not found and split == "train":
                empty.append(name)
            files += [(path, name) for path in found]
        files_by_split[split] = files
    classes = [name for name in sorted(class_dirs["train"]) if name not in empty]
    return files_by_split, classes, [class_dirs["train"][name] for name in empty]


def existing_root(config: DataConfig) -> Path:
    if not config.root:
        raise DataError(f"data.source={config.source} needs data.root",
                        f"set {param('data.root')} to the folder of the data set")
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
    for split in class_dirs:
        if split != "train":
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
    kept, sizes, formats = [], [], []
    total = len(paths)
    for position, path in enumerate(paths):
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
            kept.append(position)
            sizes.append((width, height))
            formats.append(fmt)
        done = position + 1
        if progress and (done % 200 == 0 or done == total):
            progress(f"checking {split} images", done, total)
    # labels may be [N] or [N, K]: indexing keeps the shape even when nothing is kept
    bundle.splits[split] = FileImageSet([paths[i] for i in kept],
                                        np.asarray(labels, dtype=np.int64)[kept],
                                        bundle.class_names,
                                        max_pixels=config.max_image_pixels, sizes=sizes,
                                        formats=formats)


# --- list files (list_files.py, csv_lists.py) -------------------------------------------------
def list_source(config: DataConfig, progress: Progress = None) -> DataBundle:
    """List files of images relative to root: PaddleClas lines, `relative/path.jpg label` or
    with `data.task: multilabel` `relative/path.jpg<TAB>0,1,0,1`, or CSV lists (`*.csv`) of
    `path,label names`."""
    root, entries = _list_entries(config)
    class_names, counted_by = _list_class_names(config, root, entries)
    bundle = DataBundle("list", class_names, {})
    for split, rows in entries.items():
        labels = encode_labels(rows, class_names, config.task, counted_by)
        found = []
        for position, row in enumerate(rows):
            path = root / row.path
            if path.is_file():
                found.append(position)
                continue
            log.warning("skipping %s: listed at %s but missing", path, row.where)
            bundle.skipped.append({"path": str(path), "reason": f"listed at {row.where} but "
                                   "missing", "split": split})
        _add_file_split(bundle, split, [root / rows[i].path for i in found], labels[found],
                        config, progress)
    return bundle


def list_class_count(config: DataConfig) -> int:
    """The classes `list_source` would use, from the list files alone (no image read)."""
    root, entries = _list_entries(config)
    return len(_list_class_names(config, root, entries)[0])


def _list_entries(config: DataConfig):
    """(root, split -> `ListRow`s) for the configured list files."""
    root = existing_root(config)
    if not config.train_list:
        raise DataError("data.source=list needs data.train_list",
                        f"set {param('data.train_list')} to a file of 'relative/path.jpg "
                        "label' lines")
    lists = {"train": config.train_list, "val": config.val_list, "test": config.test_list}
    return root, {split: read_list(resolve_path(root, path), split, config.task)
                  for split, path in lists.items() if path}


def _list_class_names(config: DataConfig, root: Path, entries):
    """(the label names, where their number comes from: for messages on label vectors)."""
    names_file = None
    if config.label_names:
        names_file = resolve_path(root, config.label_names)
        if not names_file.is_file():
            raise DataError(f"data.label_names '{names_file}' does not exist", "check the path")
    names = list_label_names(names_file, entries)
    first = entries["train"][0].where
    return names, "one per line of data.label_names" if names_file else f"as in {first}"


def resolve_path(root: Path, path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() or candidate.exists() else root / candidate


def read_list(path: Path, split: str, task: str) -> List[ListRow]:
    """The rows of the `split` list file `path`: CSV if its name ends in `.csv`, else
    PaddleClas lines in the format of `task`."""
    if not path.is_file():
        raise DataError(f"data.{split}_list '{path}' does not exist", "check the path")
    rows = read_csv_list(path, task) if path.suffix.lower() == ".csv" else read_text_list(
        path, task)
    if not rows:
        raise DataError(f"data.{split}_list '{path}' is empty", "list at least one image")
    return rows
