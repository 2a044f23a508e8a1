"""What the app's tabs share: where the app writes, typed-path checks, and turning a user's
mistake (a VitError) into a message on the page instead of a stack trace."""

import functools
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import gradio as gr

from ..config import parse_yaml
from ..errors import VitError
from .i18n import AppError, Key, language_of, request_language


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
    """Show a VitError (a user's mistake) as one line on the page; the app stays usable. The
    app's own checks (AppError) speak the language of the handler's gr.Request, the library's
    messages English."""
    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except AppError as error:
            language = request_language(args, kwargs) or "en"
            raise gr.Error(error.in_language(language), print_exception=False) from None
        except VitError as error:
            raise gr.Error(str(error), print_exception=False) from None
    return wrapped


def empty_table(headers: Callable[[str], List[str]]) -> Callable:
    """A page-load handler that gives an empty table the column headers it will have, in the
    page's language (`headers(language)`). A Dataframe's headers are plain text, not gr.I18n
    keys, so a table is built with the English ones and this handler replaces them; without
    headers an empty table would show Gradio's 1, 2, 3."""
    def load(request: gr.Request):
        return gr.update(value={"data": [], "headers": headers(language_of(request))})
    return load


def existing_path(value: Optional[str], what: Key) -> Optional[str]:
    """A typed path, stripped, that must exist; None when the field is empty.

    Raises:
        AppError: naming the field (`what`, a message key) and the path.
    """
    value = (value or "").strip()
    if not value:
        return None
    if not Path(value).expanduser().exists():
        raise AppError("error.path_missing", what=what, path=value)
    return str(Path(value).expanduser())


# The Data tab's fields, in order, by the config key each one shows.
DATA_FIELD_KEYS = ("data.source", "data.root", "data.archive", "data.train_list",
                   "data.label_names")
_PATH_FIELDS = {"data.root": Key("field.data_folder"), "data.archive": Key("field.archive"),
                "data.train_list": Key("field.list_file"),
                "data.label_names": Key("field.class_names_file")}


def data_overrides(*values) -> List[str]:
    """`-o` overrides for the Data tab's fields over the default config: the source, and each
    path that is filled in (checked to exist)."""
    overrides = [f"data.source={values[0]}"]
    for key, value in zip(DATA_FIELD_KEYS[1:], values[1:]):
        path = existing_path(value, _PATH_FIELDS[key])
        if path:
            overrides.append(f"{key}={_yaml_string(path)}")
    return overrides


def config_value(config, key: str):
    """The value of `section.key` in a Config."""
    section, name = key.split(".")
    return getattr(getattr(config, section), name)


def form_values(config, keys: Sequence[str]) -> list:
    """What a form's fields show for `config` (an unset path shows as an empty field)."""
    return [("" if value is None else value) for value in (config_value(config, k) for k in keys)]


def changed_overrides(config, keys: Sequence[str], values: Sequence) -> List[str]:
    """`-o` overrides for the fields whose value differs from what `config` says: a form
    shows the chosen config and sends only what the user changed.

    Raises:
        AppError: an empty number field, or a changed path that does not exist.
    """
    overrides = []
    for key, value in zip(keys, values):
        current = config_value(config, key)
        if key in _PATH_FIELDS:
            path = (value or "").strip()
            if path != (current or ""):
                checked = existing_path(path, _PATH_FIELDS[key])
                overrides.append(f"{key}={_yaml_string(checked) if checked else 'null'}")
            continue
        if current is None or isinstance(current, str):  # text; an empty field is null
            text = str(value or "").strip() or None
            if text != current:
                overrides.append(f"{key}={_yaml_string(text) if text else 'null'}")
            continue
        if value is None or value == "":
            raise AppError("error.field_empty", key=key)
        if isinstance(current, bool):
            if bool(value) != current:
                overrides.append(f"{key}={str(bool(value)).lower()}")
        elif type(current)(value) != current:
            overrides.append(f"{key}={type(current)(value)!r}")
    return overrides


def _yaml_string(text: str) -> str:
    """`text` as an override value that YAML reads back as this string: as it is when it
    does (a plain name), quoted otherwise (a path with spaces, `null`, `1e-3`, `a: b`)."""
    try:
        if re.fullmatch(r"[\w./-]+", text) and parse_yaml(text) == text:
            return text
    except VitError:
        pass
    return "'" + text.replace("'", "''") + "'"


def stamp() -> str:
    """A name part that orders by time: 20261127-073301."""
    return time.strftime("%Y%m%d-%H%M%S")
