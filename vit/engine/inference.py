"""Inference from a checkpoint alone: rebuild the model, preprocess like evaluation, predict.

The checkpoint's JSON carries what is needed (model name and arguments, class names, image size,
mean/std, resize settings, and the training config), as nanoGPT's `model_args` and PaddleClas's
`inference.yml` do. A config given with -c may replace the data settings, but a model that does
not fit it is refused with one line saying what differs.
"""

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence

import numpy as np
import paddle

from ..config import Config, config_from_dict
from ..data.datasets import FileImageSet
from ..data.images import is_image_file
from ..data.transforms import build_transforms
from ..errors import CheckpointError, VitError
from ..models import VisionTransformer
from . import checkpoint as ckpt
from .loaders import build_loader

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A model ready for inference with everything needed to feed it."""

    model: VisionTransformer
    class_names: List[str]
    image_size: int
    mean: List[float]
    std: List[float]
    config: Config  # the training config, or the -c config that replaced it
    meta: dict
    weights: Path

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def eval_transform(self):
        return build_transforms(self.config.augment, self.image_size, False, self.mean, self.std)

    def preprocessing(self) -> dict:
        """What an exported model needs besides its weights (inference.yml)."""
        return {"image_size": self.image_size, "mean": self.mean, "std": self.std,
                "interpolation": self.config.augment.interpolation,
                "crop_pct": self.config.augment.crop_pct, "class_names": self.class_names}


def load_for_inference(weights, config: Optional[Config] = None,
                       overrides: Sequence[str] = ()) -> LoadedModel:
    """Rebuild the model of a checkpoint (`.pdparams` with its `.json`) in eval mode.

    Args:
        weights: path of the checkpoint's `.pdparams`, or a run folder (its best checkpoint).
        config: replaces the checkpoint's own config (data, preprocessing); its model must be
            the checkpoint's.
        overrides: `-o section.key=value` changes to the checkpoint's own config (when no
            `config` is given), e.g. to evaluate on another copy of the data.

    Raises:
        CheckpointError: missing, incomplete or unsafe files, or a config that does not fit.
    """
    weights = Path(weights)
    if weights.is_dir():
        weights = weights / "checkpoints" / "best.pdparams" if (weights / "checkpoints").is_dir() \
            else weights / "best.pdparams"
    state, meta, _ = ckpt.load_checkpoint(weights)
    saved = config_from_dict(meta.get("config", {}), "checkpoint",
                             f"{weights.with_suffix('.json')}", overrides)
    if config is None and overrides:
        config = saved
    if config is not None:
        differences = ckpt.architecture_differences(
            meta, config.model.name, {**meta["model"]["args"], **_size_args(config)},
            meta["num_classes"])
        if differences:
            raise CheckpointError(f"{weights} does not fit the config: {'; '.join(differences)}",
                                  "use the config the model was trained with, or leave out -c")
    model = VisionTransformer(**_constructor_args(meta["model"]["args"]))
    _load_state_strictly(model, state, weights)
    model.eval()
    return LoadedModel(model, list(meta["class_names"]), int(meta["image_size"]),
                       list(meta["mean"]), list(meta["std"]), config or saved, meta, weights)


def _size_args(config: Config) -> dict:
    return {"img_size": config.data.image_size} if config.data.image_size else {}


def _constructor_args(args: dict) -> dict:
    args = dict(args)
    if isinstance(args.get("img_size"), list):
        args["img_size"] = tuple(args["img_size"])
    args["zero_head"] = False
    return args


def _load_state_strictly(model, state: dict, source):
    """Set `state` into `model`, refusing missing or unexpected keys and shape mismatches
    (Paddle's own `set_state_dict` only warns)."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = [f"{k} {list(np.shape(state[k]))} vs {list(own[k].shape)}" for k in own
             if k in state and list(np.shape(state[k])) != list(own[k].shape)]
    if missing or unexpected or wrong:
        parts = ([f"missing {', '.join(missing[:3])}"] if missing else []) + \
                ([f"unexpected {', '.join(unexpected[:3])}"] if unexpected else []) + \
                ([f"shapes {', '.join(wrong[:3])}"] if wrong else [])
        raise CheckpointError(f"{source} does not match its model: {'; '.join(parts)}",
                              "the .json and .pdparams must come from the same checkpoint")
    model.set_state_dict({k: paddle.to_tensor(np.asarray(v)) for k, v in state.items()})


def softmax(logits: np.ndarray) -> np.ndarray:
    """Class probabilities from logits [N, K], computed stably in float64."""
    logits = np.asarray(logits, dtype=np.float64)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def collect_image_paths(paths: Sequence) -> List[Path]:
    """Files as given, and image files found recursively under folders, in sorted order.

    Raises:
        VitError: a path that does not exist, naming it.
    """
    found = []
    for path in map(Path, paths):
        if path.is_dir():
            found += sorted(p for p in path.rglob("*") if p.is_file() and is_image_file(p))
        elif path.is_file():
            found.append(path)
        else:
            raise VitError(f"image path '{path}' does not exist", "check the path")
    if not found:
        raise VitError("no images found in " + ", ".join(map(str, paths)),
                       "give image files or folders holding .jpg/.png files")
    return found


def predict_paths(loaded: LoadedModel, paths: Sequence, top_k: int = 5, batch_size: int = 64,
                  progress: Optional[Callable[[str, int, int], None]] = None) -> dict:
    """Top-k classes and probabilities for each image with the dynamic model (see
    `predict_files`)."""
    def logits_of(images):
        with paddle.no_grad():
            return loaded.model(images).numpy()

    return predict_files(collect_image_paths(paths), loaded.eval_transform(), loaded.class_names,
                         logits_of, top_k, batch_size, progress)


def predict_files(files: Sequence[Path], transform, class_names: Sequence[str], logits_of,
                  top_k: int = 5, batch_size: int = 64,
                  progress: Optional[Callable[[str, int, int], None]] = None) -> dict:
    """Run `logits_of` (a batch [B, C, H, W] -> logits [B, K]) over image files.

    Unreadable images get an error row and the others are still predicted.

    Returns:
        dict with `rows` (per image: `path` and `top` as [(class, probability), ...], or `path`
        and `error`) and `images_per_s`.
    """
    dataset = FileImageSet(files, np.zeros(len(files), dtype=np.int64), class_names,
                           transform=transform, sizes=np.zeros((len(files), 2)),
                           formats=[""] * len(files))
    k = min(top_k, len(class_names))
    predictions, errors = {}, {}
    started = time.perf_counter()
    for batch in build_loader(dataset, batch_size, False):
        errors.update({name: reason for name, reason in batch["skipped"]})
        if batch["images"].shape[0]:
            probabilities = softmax(np.asarray(logits_of(batch["images"])))
            for index, row in zip(batch["indices"].numpy(), probabilities):
                order = np.argsort(-row)[:k]
                predictions[str(files[index])] = [(class_names[i], float(row[i])) for i in order]
        if progress:
            progress("predicting", len(predictions) + len(errors), len(files))
    seconds = time.perf_counter() - started
    rows = [{"path": str(p), "top": predictions[str(p)]} if str(p) in predictions
            else {"path": str(p), "error": errors.get(str(p), "unreadable")} for p in files]
    return {"rows": rows, "images_per_s": len(predictions) / max(seconds, 1e-9)}
