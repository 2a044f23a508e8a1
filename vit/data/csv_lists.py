"""CSV list files for the `list` source: a header row, then `path,labels` rows.

Columns are separated by commas and the label *names* within the labels column by spaces
(`img/1.jpg,haze primary road`), the convention of Kaggle's multi-label sets (whose own files may
need their paths completed, e.g. a file extension); a field that holds a comma is quoted, as Python's csv module
writes it. The header row is skipped; the first two columns are the image path (relative to
`data.root`) and its labels, further columns are ignored.
"""

import csv
from pathlib import Path
from typing import List

from ..errors import DataError
from .images import is_image_file
from .list_files import ListRow, label_list_refusal


def read_csv_list(path: Path, task: str) -> List[ListRow]:
    """The rows of the CSV list `path` (after its header), with their label names.

    Raises:
        DataError: a missing header, a row without a labels column, or (for `task`
            multiclass) a row naming other than exactly one label; each names file:line.
    """
    rows, header = [], None
    # utf-8-sig: spreadsheet programs start their CSV files with a byte-order mark
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        for fields in reader:
            where = f"{path}:{reader.line_num}"
            if not any(field.strip() for field in fields):
                continue
            if header is None:
                header = fields
                if is_image_file(fields[0].strip()):
                    raise DataError(f"{where}: the header row is missing (the first row lists "
                                    f"'{fields[0].strip()}')", "start the file with a header "
                                    "row such as 'image,labels'")
                continue
            if len(fields) < 2 or not fields[0].strip():
                raise DataError(f"{where}: expected 'path,labels', got '{','.join(fields)}'",
                                "write the image path, a comma, then its label names "
                                "separated by spaces (quote a field that holds a comma)")
            names = tuple(fields[1].split())
            if task != "multilabel" and len(names) > 1:
                raise label_list_refusal(where)
            if task != "multilabel" and not names:
                raise DataError(f"{where}: no label for '{fields[0].strip()}'",
                                "name the image's class in the second column")
            rows.append(ListRow(fields[0].strip(), where, names=names))
    return rows
