"""What the app's tabs share: where the app writes, typed-path checks, and turning a user's
mistake (a VitError) into a message on the page instead of a stack trace."""

import functools
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional

import gradio as gr

from ..errors import VitError


@dataclass(frozen=True)
class AppFolders:
    """The folders the app reads and writes, and the only ones it serves files from."""

    output: Path  # run folders; the app's own figures go under output/app
    data: Path  # data sets and download caches

    @property
    def scratch(self) -> Path:
        return self.output / "app"

    def served(self) -> List[str]:
        return [str(self.output.resolve()), str(self.data.resolve())]


def user_errors(handler: Callable) -> Callable:
    """Show a VitError (a user's mistake) as one line on the page; the app stays usable."""
    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except VitError as error:
            raise gr.Error(str(error), print_exception=False) from None
    return wrapped


def existing_path(value: Optional[str], what: str) -> Optional[str]:
    """A typed path, stripped, that must exist; None when the field is empty.

    Raises:
        VitError: naming the field and the path.
    """
    value = (value or "").strip()
    if not value:
        return None
    if not Path(value).expanduser().exists():
        raise VitError(f"{what} '{value}' does not exist", "check the path")
    return str(Path(value).expanduser())


def data_overrides(source: str, root: str, archive: str, train_list: str,
                   label_names: str) -> List[str]:
    """`-o` overrides for the Data tab's fields (typed paths checked)."""
    overrides = [f"data.source={source}"]
    for key, value, what in (("root", root, "data folder"), ("archive", archive, "archive"),
                             ("train_list", train_list, "list file"),
                             ("label_names", label_names, "class-names file")):
        path = existing_path(value, what)
        if path:  # quoted, so YAML reads any path as a string
            overrides.append(f"data.{key}='{path.replace(chr(39), chr(39) * 2)}'")
    return overrides


def stamp() -> str:
    """A name part that orders by time: 20261127-073301."""
    return time.strftime("%Y%m%d-%H%M%S")
