"""Data sets made of image files: an ImageFolder tree (`folder`) and PaddleClas list files
(`list`).

Every file is checked once when the data set is built (its header, and a full decode with
`data.verify_images`); files that cannot be used are skipped and listed, never replaced, and
mistakes in the layout are refused up front with the path and the fix (docs/datasets.md).
"""

import logging
from pathlib import Path
from typing import Dict

from ..config import DataConfig
from ..errors import DataError, param
from ..progress import Progress
from .datasets import DataBundle, FileImageSet
from .images import UnusableImage, is_image_file, load_image, probe_image

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


# --- PaddleClas list files ---------------------------------------------------------------------
def list_source(config: DataConfig, progress: Progress = None) -> DataBundle:
    """PaddleClas list files: `relative/path.jpg label` per line, paths relative to root."""
    root, entries = _list_entries(config)
    class_names = _list_class_names(config, root, entries)
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


def list_class_count(config: DataConfig) -> int:
    """The classes `list_source` would use, from the list files alone (no image read)."""
    root, entries = _list_entries(config)
    return len(_list_class_names(config, root, entries))


def _list_entries(config: DataConfig):
    """(root, split -> rows of `read_list`) for the configured list files."""
    root = existing_root(config)
    if not config.train_list:
        raise DataError("data.source=list needs data.train_list",
                        f"set {param('data.train_list')} to a file of 'relative/path.jpg "
                        "label' lines")
    lists = {"train": config.train_list, "val": config.val_list, "test": config.test_list}
    return root, {split: read_list(resolve_path(root, path), split)
                  for split, path in lists.items() if path}


def _list_class_names(config: DataConfig, root: Path, entries) -> list:
    """The lines of `data.label_names`, or "0".."max label" over every list."""
    if config.label_names:
        names_file = resolve_path(root, config.label_names)
        if not names_file.is_file():
            raise DataError(f"data.label_names '{names_file}' does not exist", "check the path")
        return [line.strip() for line in names_file.read_text(encoding="utf-8").splitlines()
                if line.strip()]
    top = max(label for rows in entries.values() for _, label, _ in rows)
    return [str(i) for i in range(top + 1)]


def resolve_path(root: Path, path: str) -> Path:
    candidate = Path(path)
    return candidate if candidate.is_absolute() or candidate.exists() else root / candidate


def read_list(path: Path, split: str):
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
