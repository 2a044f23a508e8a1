"""What the app's tabs share: where the app writes, its fields by the parameter each one sets,
typed-path checks, handlers bound to a tab's shared objects, and turning a user's mistake (a
VitError) into a message on the page, with the fields named as the page labels them, instead of
a stack trace."""

import dataclasses
import functools
import inspect
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import gradio as gr

from ..config import SECTIONS, parse_yaml
from ..config.schema import CLASS_WEIGHTINGS
from ..errors import VitError
from .i18n import AppError, Key, language_of, request_language, say, t


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


# The app's fields by the library parameter or config key each one sets, as the message key of
# the field's label: the tabs label their fields with `label`, and a library error that marks a
# parameter (errors.param) names the field the same way. A parameter missing here has no field
# in the app (precision, fmt, runtime, overrides, train.resume: the Resume button, not a field)
# and keeps its name.
FIELDS = {
    # 1. Data (DATA_FIELD_KEYS)
    "data.source": "data.source", "data.task": "data.task", "data.root": "data.root",
    "data.archive": "data.archive",
    "data.train_list": "data.train_list", "data.label_names": "data.label_names",
    # 2. Preprocessing
    "data.image_size": "preprocessing.size", "augment.random_resized_crop": "preprocessing.crop",
    "augment.crop_scale": "preprocessing.scale", "augment.crop_padding": "preprocessing.padding",
    "augment.hflip": "preprocessing.flip", "augment.rand_augment_n": "preprocessing.rand_n",
    "augment.rand_augment_m": "preprocessing.rand_m",
    "augment.mean": "preprocessing.normalisation", "augment.std": "preprocessing.normalisation",
    # 3. Training (training_tab.FORM_KEYS, the config and the run name)
    "config": "training.config", "model.name": "model", "model.pretrained": "training.pretrained",
    "train.epochs": "training.epochs", "optim.lr": "training.lr",
    "optim.warmup_epochs": "training.warmup", "data.batch_size": "training.batch_size",
    "train.class_weights": "training.class_weights", "data.sampler": "training.sampler",
    "train.select_best_by": "training.best_by", "output.run_name": "training.run_name",
    # 4. Inference: the model (a checkpoint, an export or published weights), the images, and
    # the split to evaluate (`data` where a function takes the split as its data)
    "weights": "model", "spec": "model", "images": "inference.images",
    "split": "inference.split", "data": "inference.split",
}


def label(parameter: str):
    """The label of the field that sets `parameter`, for building the page (a gr.I18n key)."""
    return t(FIELDS[parameter])


def field_names(language: str) -> Dict[str, str]:
    """Each parameter the app has a field for -> the field's label in `language`."""
    return {parameter: say(language, key) for parameter, key in FIELDS.items()}


def user_errors(handler: Callable) -> Callable:
    """Show a VitError (a user's mistake) as one line on the page; the app stays usable. The
    app's own checks (AppError) speak the language of the handler's gr.Request; the library's
    messages are English, with each parameter they mark named as the page labels its field."""
    @functools.wraps(handler)
    def wrapped(*args, **kwargs):
        try:
            return handler(*args, **kwargs)
        except AppError as error:
            language = request_language(args, kwargs) or "en"
            raise gr.Error(error.in_language(language), print_exception=False) from None
        except VitError as error:
            language = request_language(args, kwargs) or "en"
            raise gr.Error(error.worded(field_names(language)), print_exception=False) from None
    return wrapped


def bind(handler: Callable, *shared) -> Callable:
    """`handler` with its first parameters given (what a tab's handlers share: the folders,
    the runs), as the event function Gradio calls with the rest. Not a `functools.partial`:
    Gradio finds the gr.Request parameter by the function's type hints and names the API
    endpoint after its `__name__`, and a partial has neither."""
    @functools.wraps(handler)
    def event(*args, **kwargs):
        return handler(*shared, *args, **kwargs)
    signature = inspect.signature(handler)
    event.__signature__ = signature.replace(
        parameters=list(signature.parameters.values())[len(shared):])
    return event


def empty_table(headers: Callable[[str], List[str]]) -> Callable:
    """A page-load handler that gives an empty table the column headers it will have, in the
    page's language (`headers(language)`). A Dataframe's headers are plain text, not gr.I18n
    keys, so a table is built with the English ones and this handler replaces them; without
    headers an empty table would show Gradio's 1, 2, 3."""
    def load(request: gr.Request):
        return gr.update(value={"data": [], "headers": headers(language_of(request))})
    return load


def existing_path(value: Optional[str], key: str) -> Optional[str]:
    """The path typed in the field of config key `key`, stripped, which must exist; None when
    the field is empty.

    Raises:
        AppError: naming the field (as it is labelled) and the path.
    """
    value = (value or "").strip()
    if not value:
        return None
    if not Path(value).expanduser().exists():
        raise AppError("error.path_missing", what=Key(FIELDS[key]), path=value)
    return str(Path(value).expanduser())


# The Data tab's fields, in order, by the config key each one shows; all but the source and
# the task are paths.
DATA_FIELD_KEYS = ("data.source", "data.task", "data.root", "data.archive", "data.train_list",
                   "data.label_names")
_PATH_KEYS = DATA_FIELD_KEYS[2:]
# The fields that choose one of a config key's named values (a dropdown): each value is
# labelled by the message `<the field's label key>.<value>`.
CHOICE_KEYS = ("data.task", "train.class_weights", "data.sampler", "train.select_best_by")


def key_choices(key: str) -> Tuple[str, ...]:
    """The named values of config key `key`, as the schema declares them."""
    if key == "train.class_weights":  # or a list of weights, which only a config file sets
        return CLASS_WEIGHTINGS
    section, name = key.split(".")
    return next(f.metadata["choices"] for f in dataclasses.fields(SECTIONS[section])
                if f.name == name)


def choice_field(key: str, value, **options):
    """A dropdown of the named values of config key `key`, showing `value`."""
    return gr.Dropdown([(t(f"{FIELDS[key]}.{choice}"), choice) for choice in key_choices(key)],
                       value=value, label=label(key), **options)


def data_overrides(*values) -> List[str]:
    """`-o` overrides for the Data tab's fields over the default config: the source, the task,
    and each path that is filled in (checked to exist)."""
    overrides = [f"data.source={values[0]}", f"data.task={values[1]}"]
    for key, value in zip(_PATH_KEYS, values[2:]):
        path = existing_path(value, key)
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
        if key in _PATH_KEYS:
            path = (value or "").strip()
            if path != (current or ""):
                checked = existing_path(path, key)
                overrides.append(f"{key}={_yaml_string(checked) if checked else 'null'}")
            continue
        if current is None or isinstance(current, str):  # text; an empty field is null
            text = str(value or "").strip() or None
            if text != current:
                overrides.append(f"{key}={_yaml_string(text) if text else 'null'}")
            continue
        if value is None or value == "":
            raise AppError("error.field_empty", field=Key(FIELDS[key]))
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
