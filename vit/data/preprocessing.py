"""The preprocessing record: what a trained model needs besides its weights.

Image size, normalisation, resize settings and what the outputs mean (the class names, the task,
and for several labels per image the threshold of each) are fixed when a run prepares its data,
the thresholds at each validation (the best checkpoint keeps those of its epoch). The trainer
writes this record into every checkpoint; inference, export (`inference.yml`) and the web app
read it back, and build the evaluation pipeline from it alone
(PaddleClas keeps the same facts in `inference.yml`, timm in `pretrained_cfg`).
"""

from dataclasses import asdict, dataclass
from typing import Tuple

from ..errors import CheckpointError
from .transforms import build_eval_transform


@dataclass(frozen=True)
class Preprocessing:
    """How images become the model's input, and what its outputs mean.

    Attributes:
        image_size: side of the model's square input, in pixels.
        mean, std: per-channel normalisation, in [0, 1] units.
        interpolation: resampling filter of the resize.
        crop_pct: evaluation resizes to image_size / crop_pct, then center-crops.
        class_names: the name of each output, in order.
        task: `multiclass` (a softmax over the classes) or `multilabel` (a sigmoid per label).
        thresholds: multilabel: each label's probability threshold, chosen on the validation
            split; empty: 0.5 each (and always for multiclass).
    """

    image_size: int
    mean: Tuple[float, ...]
    std: Tuple[float, ...]
    interpolation: str = "bilinear"
    crop_pct: float = 1.0
    class_names: Tuple[str, ...] = ()
    task: str = "multiclass"
    thresholds: Tuple[float, ...] = ()

    @property
    def multilabel(self) -> bool:
        return self.task == "multilabel"

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def eval_transform(self):
        """The evaluation pipeline: RGB PIL image -> normalised float32 [C, H, W]."""
        return build_eval_transform(self.image_size, self.mean, self.std, self.interpolation,
                                    self.crop_pct)

    def to_dict(self) -> dict:
        """Plain data for JSON and YAML (lists, not tuples)."""
        return {key: list(value) if isinstance(value, tuple) else value
                for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls, record: dict, source: str = "the record") -> "Preprocessing":
        """Read a record written by `to_dict`.

        Raises:
            CheckpointError: a key is missing, naming `source`.
        """
        try:
            return cls(image_size=int(record["image_size"]),
                       mean=tuple(float(v) for v in record["mean"]),
                       std=tuple(float(v) for v in record["std"]),
                       interpolation=str(record.get("interpolation", "bilinear")),
                       crop_pct=float(record.get("crop_pct", 1.0)),
                       class_names=tuple(str(n) for n in record["class_names"]),
                       task=str(record.get("task", "multiclass")),  # absent before multilabel
                       thresholds=tuple(float(v) for v in record.get("thresholds", ())))
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"{source} has no usable preprocessing record ({error!r} is "
                                  "missing or malformed)", "use files written by vit-paddle's "
                                  "trainer or tools/export.py") from None
