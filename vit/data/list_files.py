"""The list files of the `list` source, read into rows, and the rows' labels into arrays.

Three formats (docs/datasets.md): PaddleClas's `relative/path.jpg label` (one class per image)
and multi-label `relative/path.jpg<TAB>0,1,0,1` (a 0/1 per label, with `data.task: multilabel`),
read here, and CSV lists of `path,label names` (csv_lists.py). Every mistake is refused with the
file and line that holds it.
"""

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

import numpy as np

from ..errors import DataError, param

# a label list in PaddleClas's multi-label format: comma-separated integers
_VECTOR = re.compile(r"^\d+(,\d+)+$")


@dataclass(frozen=True)
class ListRow:
    """One image of a list file.

    Attributes:
        path: the image, relative to `data.root`.
        where: "file:line", for messages.
        label: a class index, or a 0/1 tuple with one entry per label (text lists).
        names: the label names of a CSV row (then `label` is None).
    """

    path: str
    where: str
    label: Union[int, Tuple[int, ...], None] = None
    names: Optional[Tuple[str, ...]] = None


def read_text_list(path: Path, task: str) -> List[ListRow]:
    """The rows of a PaddleClas list file, in the line format of `task`."""
    parse = _vector_line if task == "multilabel" else _class_line
    return [parse(line.strip(), f"{path}:{number}") for number, line
            in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1) if line.strip()]


def label_list_refusal(where: str) -> DataError:
    """Several labels given for one image while each image has one class."""
    return DataError(f"{where}: a label list on a single-label task",
                     f"set {param('data.task', 'multilabel')} for several labels per image, "
                     "or give each image one label")


def _class_line(line: str, where: str) -> ListRow:
    """`relative/path.jpg label`; file names may contain spaces, the label cannot."""
    parts = line.rsplit(maxsplit=1)
    if len(parts) == 2 and _VECTOR.match(parts[1]):
        raise label_list_refusal(where)
    if len(parts) != 2 or not parts[1].lstrip("-").isdigit():
        raise DataError(f"{where}: expected 'relative/path.jpg label', got '{line}'",
                        "write one image path and an integer label per line")
    label = int(parts[1])
    if label < 0:
        raise DataError(f"{where}: label {label} is negative", "labels count from 0")
    return ListRow(parts[0], where, label)


def _vector_line(line: str, where: str) -> ListRow:
    """`relative/path.jpg<TAB>0,1,0,1`: PaddleClas's multi-label line, a 0/1 per label."""
    path, tab, vector = line.rpartition("\t")
    if not tab or not path.strip():
        raise DataError(f"{where}: expected 'relative/path.jpg<TAB>0,1,0,1' on a multi-label "
                        f"task, got '{line}'", "write the image path, a tab, then a 0 or 1 "
                        "for each label, separated by commas")
    values = [value.strip() for value in vector.split(",")]
    wrong = [value for value in values if value not in ("0", "1")]
    if wrong:
        raise DataError(f"{where}: label value '{wrong[0]}' is not 0 or 1",
                        "mark each label 1 (the image carries it) or 0")
    return ListRow(path.strip(), where, tuple(int(value) for value in values))


def list_label_names(names_file: Optional[Path], rows_by_split: Dict[str, List[ListRow]]):
    """The label names: the lines of `names_file` (`data.label_names`), else the sorted union
    of the names in the CSV lists, else "0".."K-1" (K: the length of the first label vector,
    or the largest class index + 1)."""
    rows = [row for split_rows in rows_by_split.values() for row in split_rows]
    if names_file is not None:
        names = [line.strip() for line in names_file.read_text(encoding="utf-8").splitlines()
                 if line.strip()]
    elif any(row.names is not None for row in rows):
        names = sorted({name for row in rows if row.names is not None for name in row.names})
    elif isinstance(rows[0].label, tuple):
        names = [str(i) for i in range(len(rows[0].label))]
    else:
        names = [str(i) for i in range(1 + max(row.label for row in rows))]
    if not names:
        raise DataError("the list files name no labels", f"name them in the lists or in "
                        f"the file {param('data.label_names')}")
    return names


def encode_labels(rows: List[ListRow], names: List[str], task: str, counted_by: str):
    """The rows' labels as class indices [N], or 0/1 vectors [N, K] for `task` multilabel.

    Args:
        counted_by: where the number of names comes from, for the message on a label vector
            of another length ("one per line of data.label_names", "as in train.txt:1").
    """
    multilabel = task == "multilabel"
    labels = np.zeros((len(rows), len(names)) if multilabel else len(rows), dtype=np.int64)
    index = {name: i for i, name in enumerate(names)}
    for position, row in enumerate(rows):
        if row.names is not None:
            columns = [_named_label(name, index, row.where) for name in row.names]
            if multilabel:
                labels[position, columns] = 1
            else:  # csv_lists.py has checked that there is exactly one
                labels[position] = columns[0]
        elif multilabel:
            if len(row.label) != len(names):
                raise DataError(f"{row.where}: the label vector has {len(row.label)} values, "
                                f"expected {len(names)} ({counted_by})",
                                "give every image one 0/1 value per label")
            labels[position] = row.label
        else:
            if row.label >= len(names):
                raise DataError(f"{row.where}: label {row.label} is out of range for "
                                f"{len(names)} classes", "fix the label or "
                                "data.label_names (line i names label i)")
            labels[position] = row.label
    return labels


def _named_label(name: str, index: Dict[str, int], where: str) -> int:
    """The column of label `name`; an unknown name is refused with the closest known one."""
    if name not in index:
        close = difflib.get_close_matches(name, index, n=1, cutoff=0.0)
        raise DataError(f"{where}: unknown label '{name}'",
                        (f"did you mean '{close[0]}'? " if close else "")
                        + f"the names are the lines of {param('data.label_names')}")
    return index[name]
