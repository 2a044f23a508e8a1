"""Inference from a checkpoint alone: rebuild the model, preprocess like evaluation, predict.

The checkpoint's JSON carries what is needed (model name and arguments, the preprocessing
record, and the training config), as nanoGPT's `model_args` and PaddleClas's `inference.yml`
do. A config given with -c may replace the data settings, but a model that does not fit it is
refused with a table of what differs.

A *predictor* is anything with `preprocessing` (a `Preprocessing` record), `config` (whose data
section names the data set for evaluation), `source` (a name for reports) and
`logits(images [B, C, H, W]) -> [B, K]`: the eager `LoadedModel` here and the exported
`InferenceModel` (export.py) both are, so prediction and evaluation treat them alike.
"""

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import paddle

from ..config import Config, config_from_dict, to_plain
from ..data.datasets import FileImageSet
from ..data.images import is_image_file
from ..data.loaders import build_loader
from ..data.preprocessing import Preprocessing
from ..errors import VitError
from ..models import build_recorded_model
from ..models.layers import to_2tuple
from ..models.weights import load_state_dict_strict
from ..progress import Progress
from .checkpoint import architecture_differences, load_checkpoint, refuse_other_architecture

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A model ready for inference with everything needed to feed it."""

    model: paddle.nn.Layer  # a VisionTransformer, or a CNN baseline
    preprocessing: Preprocessing
    config: Config  # the training config, or the -c config that replaced it
    meta: dict
    weights: Path

    @property
    def class_names(self) -> List[str]:
        return list(self.preprocessing.class_names)

    @property
    def num_classes(self) -> int:
        return self.preprocessing.num_classes

    @property
    def source(self) -> str:
        return str(self.weights)

    def logits(self, images) -> np.ndarray:
        """Logits [B, K] for a preprocessed batch [B, C, H, W] (array or tensor)."""
        if not isinstance(images, paddle.Tensor):
            images = paddle.to_tensor(np.asarray(images, dtype=np.float32))
        with paddle.no_grad():
            return self.model(images).numpy()


def resolve_weights(weights) -> Path:
    """A checkpoint's `.pdparams`, given as such or as a run folder (its best checkpoint)."""
    weights = Path(weights)
    if weights.is_dir():
        folder = weights / "checkpoints" if (weights / "checkpoints").is_dir() else weights
        return folder / "best.pdparams"
    return weights


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
    weights = resolve_weights(weights)
    state, meta, _ = load_checkpoint(weights)
    saved = config_from_dict(meta.get("config", {}), "checkpoint",
                             f"{weights.with_suffix('.json')}", overrides)
    if config is None and overrides:
        config = saved
    if config is not None:
        size = {"img_size": config.data.image_size} if config.data.image_size else {}
        refuse_other_architecture(
            architecture_differences(meta, config.model.name, {**meta["model"]["args"], **size},
                                     meta["num_classes"]),
            f"{weights} does not fit the config",
            "use the config the model was trained with, or leave out -c")
    model = build_recorded_model(meta["model"]["name"], meta["model"]["args"])
    load_state_dict_strict(model, state, weights,
                           "the .json and .pdparams must come from the same checkpoint")
    model.eval()
    preprocessing = Preprocessing.from_dict(meta.get("preprocessing", meta),
                                            str(weights.with_suffix(".json")))
    return LoadedModel(model, preprocessing, config or saved, meta, weights)


def load_published(spec: str, config: Optional[Config] = None,
                   overrides: Sequence[str] = ()) -> LoadedModel:
    """A model from published weights, ready for inference like a checkpoint: `spec` is a
    registered `Name[.tag]` (its model, classes and preprocessing come from the registry) or a
    weights file, folder or URL (for the config's model, with the config's preprocessing).

    Raises:
        ModelError: a name or tag the registry does not have.
        CheckpointError: weights that cannot be fetched or do not fit.
    """
    from ..config import load_default_config
    from ..models.pretrained import build_pretrained, find_weights

    base = config or load_default_config(overrides)
    entry = find_weights(spec)
    name = entry.model if entry is not None else base.model.name
    size = {"img_size": base.data.image_size} if entry is None and base.data.image_size else {}
    published = build_pretrained(name, spec, **size)
    side = entry.image_size if entry is not None else to_2tuple(published.args["img_size"])[0]
    if config is None:
        base = load_default_config([f"model.name={name}", f"data.image_size={side}",
                                    *overrides])
    how = entry if entry is not None else base.augment  # the weights' own, or the config's
    if isinstance(how.mean, str) or isinstance(how.std, str):
        raise VitError("augment.mean/std 'dataset' needs a data set to measure",
                       "give the numbers, e.g. -o augment.mean=[0.5,0.5,0.5]")
    preprocessing = Preprocessing(side, tuple(how.mean), tuple(how.std), how.interpolation,
                                  how.crop_pct, tuple(published.class_names))
    published.model.eval()
    meta = {"model": {"name": name, "args": to_plain(published.args)},
            "num_classes": len(published.class_names), "pretrained": str(spec)}
    return LoadedModel(published.model, preprocessing, base, meta, published.path)


def top_classes(probabilities: np.ndarray, class_names: Sequence[str], k: int = 5) -> list:
    """The `k` most probable (class name, probability) pairs of one image, best first."""
    order = np.argsort(-probabilities)[:min(k, len(class_names))]
    return [(class_names[i], float(probabilities[i])) for i in order]


def logit_agreement(ours: np.ndarray, theirs: np.ndarray) -> dict:
    """Two models' logits [N, K] for the same N images: the share with the same top-1 class and
    the largest logit difference (both 0 for no images)."""
    if not len(ours):
        return {"top1_agreement": 0.0, "max_abs_logit_difference": 0.0}
    return {"top1_agreement": float((ours.argmax(1) == theirs.argmax(1)).mean()),
            "max_abs_logit_difference": float(np.abs(ours - theirs).max())}


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


def predict_paths(predictor, paths: Sequence, top_k: int = 5, batch_size: int = 64,
                  progress: Progress = None) -> dict:
    """Top-k classes and probabilities for image files and folders, with any predictor.

    Unreadable images get an error row and the others are still predicted.

    Returns:
        dict with `rows` (per image: `path` and `top` as [(class, probability), ...], or `path`
        and `error`) and `images_per_s`.
    """
    files = collect_image_paths(paths)
    class_names = list(predictor.preprocessing.class_names)
    dataset = FileImageSet(files, np.zeros(len(files), dtype=np.int64), class_names,
                           transform=predictor.preprocessing.eval_transform(),
                           max_pixels=predictor.config.data.max_image_pixels,
                           sizes=np.zeros((len(files), 2)), formats=[""] * len(files))
    k = min(top_k, len(class_names))
    predictions, errors = {}, {}
    started = time.perf_counter()
    for batch in build_loader(dataset, batch_size, False):
        errors.update({name: reason for name, reason in batch["skipped"]})
        if batch["images"].shape[0]:
            probabilities = softmax(predictor.logits(batch["images"]))
            for index, row in zip(batch["indices"].numpy(), probabilities):
                predictions[str(files[index])] = top_classes(row, class_names, k)
        if progress:
            progress("predicting", len(predictions) + len(errors), len(files))
    seconds = time.perf_counter() - started
    rows = [{"path": str(p), "top": predictions[str(p)]} if str(p) in predictions
            else {"path": str(p), "error": errors.get(str(p), "unreadable")} for p in files]
    return {"rows": rows, "images_per_s": len(predictions) / max(seconds, 1e-9)}
