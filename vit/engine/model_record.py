"""The model record: what rebuilds a trained model and feeds it, in one shape wherever it is kept.

A record is the model's registered name, its constructor arguments and its preprocessing record
(image size, normalisation, resize settings, class names). It is written under the key `model`
of a checkpoint's `.json`, of an export's `inference.yml` and (as JSON text) of the export's
`model.safetensors` metadata:

    model: {name: ViT_tiny_patch4_16, args: {patch_size: 4, ...}, preprocessing: {...}}

Each fact is written once: the class count is the number of class names and the input size is
the preprocessing's image size, so the arguments leave out `num_classes` and `img_size`
(`DERIVED_ARGS`) and `model_args` puts them back. Files written before this shape keep their
own (checkpoint formats 1 and 2, the first `inference.yml` and safetensors metadata);
`read_model_record` reads every shape, and `_legacy_record` is the one place that knows the old
ones.
"""

import json
from dataclasses import dataclass, replace
from typing import Dict, List, Optional, Sequence, Tuple

from ..data.preprocessing import Preprocessing
from ..errors import CheckpointError
from ..models import architecture_differences, build_recorded_model
from ..models.layers import to_2tuple
from ..models.weights import format_table

# Constructor arguments a record does not store: the preprocessing states them.
DERIVED_ARGS = ("num_classes", "img_size")

# The `format` of the safetensors metadata vit-paddle writes (the export and tools/convert.py).
SAFETENSORS_FORMAT = "vit-paddle"

Rows = List[Tuple[str, str, str]]


@dataclass(frozen=True)
class ModelRecord:
    """A trained model's name, architecture and preprocessing.

    Attributes:
        name: the registered model name (`vit-summary --list`, or a baseline).
        args: the constructor's arguments but `DERIVED_ARGS`; empty where a file recorded only
            the name (the first `inference.yml`).
        preprocessing: how images become the model's input, and the class names.
    """

    name: str
    args: Dict[str, object]
    preprocessing: Preprocessing

    @classmethod
    def of(cls, name: str, model_args: dict, preprocessing: Preprocessing,
           source: str = "the model") -> "ModelRecord":
        """The record of a model built with the complete `model_args`.

        Raises:
            CheckpointError: the arguments' class count or input size disagree with the
                preprocessing record, naming `source` (with a table of both copies).
        """
        _refuse_disagreement(source, {
            "classes": [("model.args.num_classes", model_args.get("num_classes")),
                        ("preprocessing.class_names", preprocessing.num_classes)],
            "input size": [("model.args.img_size", _square(model_args.get("img_size"))),
                           ("preprocessing.image_size", _square(preprocessing.image_size))]})
        args = {key: value for key, value in model_args.items() if key not in DERIVED_ARGS}
        return cls(name, args, preprocessing)

    @property
    def class_names(self) -> List[str]:
        return list(self.preprocessing.class_names)

    @property
    def num_classes(self) -> int:
        return self.preprocessing.num_classes

    def model_args(self) -> dict:
        """The complete constructor arguments, the derived ones put back."""
        return {**self.args, "num_classes": self.num_classes,
                "img_size": self.preprocessing.image_size}

    def build(self):
        """A freshly initialised model of this architecture."""
        return build_recorded_model(self.name, self.model_args())

    def to_dict(self) -> dict:
        """Plain data for JSON and YAML."""
        return {"name": self.name, "args": self.args,
                "preprocessing": self.preprocessing.to_dict()}

    @classmethod
    def from_dict(cls, record: dict, source: str) -> "ModelRecord":
        """Read a record written by `to_dict`.

        Raises:
            CheckpointError: a part is missing, or the arguments repeat a derived fact.
        """
        if not isinstance(record.get("name"), str) or not isinstance(record.get("args"), dict):
            raise CheckpointError(f"{source} has no usable model record (its name or "
                                  "arguments are missing)", _REWRITE)
        repeated = [key for key in DERIVED_ARGS if key in record["args"]]
        if repeated:
            raise CheckpointError(f"{source} records {repeated[0]} among the model's arguments, "
                                  "where the preprocessing record states it",
                                  f"remove model.args.{repeated[0]} from the file")
        return cls(record["name"], dict(record["args"]),
                   Preprocessing.from_dict(record.get("preprocessing") or {}, source))

    def differences(self, other: "ModelRecord") -> Rows:
        """Rows (what, here, in `other`) where the two models differ in architecture (the
        arguments that only regularise do not count) or in what their outputs mean (the
        task); empty when they are the same."""
        rows = [("model", self.name, other.name)] if self.name != other.name else []
        rows += [(key, str(ours), str(theirs)) for key, ours, theirs
                 in architecture_differences(self.args, other.args)]
        for what, ours, theirs in (("classes", self.num_classes, other.num_classes),
                                   ("image size", self.preprocessing.image_size,
                                    other.preprocessing.image_size),
                                   ("task", self.preprocessing.task, other.preprocessing.task)):
            if ours != theirs:
                rows.append((what, str(ours), str(theirs)))
        return rows

    def with_thresholds(self, thresholds) -> "ModelRecord":
        """The same record judging its labels by `thresholds` (multilabel: one per label)."""
        return replace(self, preprocessing=replace(
            self.preprocessing, thresholds=tuple(float(t) for t in thresholds)))

    def with_image_size(self, image_size: Optional[int]) -> "ModelRecord":
        """The same record fed `image_size` pixels (unchanged for None)."""
        if not image_size:
            return self
        return replace(self, preprocessing=replace(self.preprocessing, image_size=image_size))


def safetensors_metadata(record: ModelRecord) -> Dict[str, str]:
    """The metadata of a `.safetensors` file holding the weights of `record`'s model."""
    return {"format": SAFETENSORS_FORMAT, "model": json.dumps(record.to_dict())}


def read_model_record(meta: dict, source: str) -> ModelRecord:
    """The model record in a checkpoint's `.json`, an `inference.yml` or a safetensors
    metadata dict, in whichever shape the file has.

    Raises:
        CheckpointError: no usable record, or an old record whose copies of a fact disagree.
    """
    model = meta.get("model")
    if isinstance(model, str) and model.lstrip().startswith("{"):  # safetensors keeps text
        model = _json(model, source)
    if isinstance(model, dict) and "preprocessing" in model:
        return ModelRecord.from_dict(model, source)
    return _legacy_record(meta, model, source)


def _legacy_record(meta: dict, model, source: str) -> ModelRecord:
    """Records written before the one shape. Checkpoint format 1 kept the preprocessing keys
    at the top level, format 2 under `preprocessing`, both beside `model: {name, args}` (the
    complete arguments) and a top-level `num_classes`; the first `inference.yml` recorded the
    model by name only, with `num_classes` and `preprocessing`; the first safetensors metadata
    held `model` ({name, args}) and `preprocessing` as JSON text. Their copies of the class
    count and input size must agree."""
    if isinstance(model, str):
        model = {"name": model, "args": {}}
    if not isinstance(model, dict) or not isinstance(model.get("name"), str):
        raise CheckpointError(f"{source} records no model", _REWRITE)
    preprocessing = meta.get("preprocessing", meta)
    if isinstance(preprocessing, str):
        preprocessing = _json(preprocessing, source)
    preprocessing = Preprocessing.from_dict(preprocessing, source)
    _refuse_disagreement(source, {"classes": [("num_classes", meta.get("num_classes")),
                                              ("preprocessing.class_names",
                                               preprocessing.num_classes)]})
    return ModelRecord.of(model["name"], dict(model.get("args") or {}), preprocessing, source)


def refuse_differences(rows: Rows, message: str, hint: str,
                       columns: Sequence[str] = ("in the checkpoint", "in the config")):
    """Raise a CheckpointError with `rows` (from `ModelRecord.differences`) as a table."""
    if rows:
        summary = "; ".join(f"{what} {theirs} vs {ours}" for what, theirs, ours in rows[:3])
        raise CheckpointError(f"{message} ({summary})", hint,
                              details=format_table(rows, ("", *columns)))


def _refuse_disagreement(source: str, copies: Dict[str, List[Tuple[str, object]]]):
    """Raise a CheckpointError naming `source` when the recorded copies of a fact (those that
    are recorded at all) disagree, with a table of them."""
    rows = []
    for fact, places in copies.items():
        known = [(where, value) for where, value in places if value is not None]
        if len({str(value) for _, value in known}) > 1:
            rows += [(fact, where, str(value)) for where, value in known]
    if rows:
        raise CheckpointError(f"{source} records the {rows[0][0]} differently in different "
                              "places", "use the record the trainer wrote, or fix it by hand",
                              details=format_table(rows, ("fact", "recorded as", "value")))


def _square(size) -> Optional[list]:
    return None if size is None else list(to_2tuple(size))


def _json(text: str, source: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{source} holds a model record that is not valid JSON ({error})",
                              "the file is damaged") from None


_REWRITE = "use files written by vit-paddle's trainer or export"
