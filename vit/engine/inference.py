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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np
import paddle

from ..config import Config, config_from_dict, to_plain
from ..data.datasets import FileImageSet
from ..data.images import is_image_file
from ..data.loaders import build_loader
from ..data.preprocessing import Preprocessing
from ..errors import ConfigError, VitError, param
from ..models.layers import to_2tuple
from ..models.weights import load_state_dict_strict
from ..progress import Progress
from ..serialization import load_safetensors
from .checkpoint import checkpoint_record, load_checkpoint
from .model_record import SAFETENSORS_FORMAT, ModelRecord, read_model_record, refuse_differences
from .run_folder import weights_in
from .scores import label_decisions, output_probabilities

log = logging.getLogger(__name__)


@dataclass
class LoadedModel:
    """A model ready for inference with everything needed to feed it."""

    model: paddle.nn.Layer  # a VisionTransformer, or a CNN baseline
    record: ModelRecord  # its name, arguments and preprocessing
    config: Config  # the training config, or the -c config that replaced it
    weights: Path

    @property
    def preprocessing(self) -> Preprocessing:
        return self.record.preprocessing

    @property
    def class_names(self) -> List[str]:
        return self.record.class_names

    @property
    def num_classes(self) -> int:
        return self.record.num_classes

    @property
    def source(self) -> str:
        return str(self.weights)

    def logits(self, images) -> np.ndarray:
        """Logits [B, K] for a preprocessed batch [B, C, H, W] (array or tensor)."""
        if not isinstance(images, paddle.Tensor):
            images = paddle.to_tensor(np.asarray(images, dtype=np.float32))
        with paddle.no_grad():
            return self.model(images).numpy()


def load_for_inference(weights, config: Optional[Config] = None,
                       overrides: Sequence[str] = ()) -> LoadedModel:
    """Rebuild the model of a checkpoint (`.pdparams` with its `.json`) in eval mode.

    Args:
        weights: path of the checkpoint's `.pdparams`, or a run folder (its best checkpoint).
        config: replaces the checkpoint's own config (data, preprocessing); its model must be
            the checkpoint's.
        overrides: `section.key=value` changes to the checkpoint's own config (when no
            `config` is given), e.g. to evaluate on another copy of the data.

    Raises:
        CheckpointError: missing, incomplete or unsafe files, or a config that does not fit.
    """
    weights = weights_in(weights)
    state, meta, _ = load_checkpoint(weights)
    record = checkpoint_record(weights, meta)
    saved = config_from_dict(meta.get("config", {}), "checkpoint",
                             f"{weights.with_suffix('.json')}", overrides)
    if config is None and overrides:
        config = saved
    if config is not None:
        wanted = replace(record.with_image_size(config.data.image_size), name=config.model.name)
        refuse_differences(record.differences(wanted), f"{weights} does not fit the config",
                           "use the config the model was trained with, or leave out "
                           f"{param('config')}")
    return LoadedModel(_recorded_model(record, state, weights), record, config or saved, weights)


def _recorded_model(record: ModelRecord, state: dict, source) -> paddle.nn.Layer:
    """The record's model with `state` loaded, in eval mode."""
    model = record.build()
    load_state_dict_strict(model, state, source,
                           "the weights and their model record must come from the same file")
    model.eval()
    return model


def load_published(spec: str, config: Optional[Config] = None,
                   overrides: Sequence[str] = ()) -> LoadedModel:
    """A model from published weights, ready for inference like a checkpoint: `spec` is a
    registered `Name[.tag]` (its model, classes and preprocessing come from the registry), a
    `model.safetensors` written by the export (its model record says them), or a weights file,
    folder or URL (for the config's model, with the config's preprocessing).

    Raises:
        ModelError: a name or tag the registry does not have.
        CheckpointError: weights that cannot be fetched or do not fit.
    """
    from ..config import load_default_config
    from ..models.pretrained import build_pretrained
    from ..models.pretrained_registry import find_weights

    exported = exported_weights(spec)
    if exported is not None:
        state, record = exported
        base = config or load_default_config([f"model.name={record.name}", *overrides])
        return LoadedModel(_recorded_model(record, state, spec), record, base, Path(spec))
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
        raise ConfigError(f"{param('augment.mean', 'dataset')} or "
                          f"{param('augment.std', 'dataset')} needs a data set to measure",
                          f"give the numbers, e.g. {param('augment.mean', '[0.5,0.5,0.5]')}")
    preprocessing = Preprocessing(side, tuple(how.mean), tuple(how.std), how.interpolation,
                                  how.crop_pct, tuple(published.class_names))
    published.model.eval()
    record = ModelRecord.of(name, to_plain(published.args), preprocessing, str(spec))
    return LoadedModel(published.model, record, base, published.path)


def exported_weights(spec) -> Optional[tuple]:
    """(weights, model record) of a local `.safetensors` file whose metadata holds a model
    record (the export's `model.safetensors`); None for anything else."""
    path = Path(str(spec))
    if path.suffix.lower() != ".safetensors" or not path.is_file():
        return None
    state, metadata = load_safetensors(path)
    if metadata.get("format") != SAFETENSORS_FORMAT or "model" not in metadata:
        return None
    return state, read_model_record(metadata, f"the metadata of {path}")


def top_classes(probabilities: np.ndarray, class_names: Sequence[str], k: int = 5) -> list:
    """The `k` most probable (class name, probability) pairs of one image, best first."""
    order = np.argsort(-probabilities)[:min(k, len(class_names))]
    return [(class_names[i], float(probabilities[i])) for i in order]


def logit_agreement(ours: np.ndarray, theirs: np.ndarray, multilabel: bool = False,
                    thresholds: Sequence[float] = ()) -> dict:
    """Two models' logits [N, K] for the same N images: the share with the same top-1 class
    (multilabel: of the per-label decisions at `thresholds` that match) and the largest logit
    difference (both 0 for no images)."""
    key = "decision_agreement" if multilabel else "top1_agreement"
    if not len(ours):
        return {key: 0.0, "max_abs_logit_difference": 0.0}
    same = (label_decisions(ours, thresholds) == label_decisions(theirs, thresholds)
            if multilabel else ours.argmax(1) == theirs.argmax(1))
    return {key: float(same.mean()), "max_abs_logit_difference": float(np.abs(ours - theirs).max())}


def agreement_words(agreement: dict) -> str:
    """`top-1 agreement 0.9972`, or `label decision agreement 0.9990` (multilabel), for
    printed lines."""
    if "decision_agreement" in agreement:
        return f"label decision agreement {agreement['decision_agreement']:.4f}"
    return f"top-1 agreement {agreement['top1_agreement']:.4f}"


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


def unlabelled_images(predictor, files: Sequence[Path]) -> FileImageSet:
    """Image files given by a user (no labels) as a data set in `predictor`'s evaluation
    pipeline, with its size limit; each file is checked when it loads, not scanned first."""
    return FileImageSet(files, np.zeros(len(files), dtype=np.int64),
                        predictor.preprocessing.class_names,
                        transform=predictor.preprocessing.eval_transform(),
                        max_pixels=predictor.config.data.max_image_pixels,
                        sizes=np.zeros((len(files), 2)), formats=[""] * len(files))


def predict_paths(predictor, paths: Sequence, top_k: int = 5, batch_size: int = 64,
                  progress: Progress = None) -> dict:
    """Top-k classes and probabilities for image files and folders, with any predictor; for a
    model of several labels per image also the labels whose probability reaches their
    threshold.

    Unreadable images get an error row and the others are still predicted.

    Returns:
        dict with `rows` (per image: `path` and `top` as [(class, probability), ...], best
        first, and for multilabel `labels` and `probabilities` (`_read_outputs`); or `path`
        and `error`) and `images_per_s`.
    """
    files = collect_image_paths(paths)
    prep = predictor.preprocessing
    dataset = unlabelled_images(predictor, files)
    predictions, errors = {}, {}
    started = time.perf_counter()
    for batch in build_loader(dataset, batch_size, False):
        errors.update({name: reason for name, reason in batch["skipped"]})
        if batch["images"].shape[0]:
            logits = predictor.logits(batch["images"])
            for index, row in zip(batch["indices"].numpy(), _read_outputs(logits, prep, top_k)):
                predictions[str(files[index])] = row
        if progress:
            progress("predicting", len(predictions) + len(errors), len(files))
    seconds = time.perf_counter() - started
    rows = [{"path": str(p), **predictions[str(p)]} if str(p) in predictions
            else {"path": str(p), "error": errors.get(str(p), "unreadable")} for p in files]
    return {"rows": rows, "images_per_s": len(predictions) / max(seconds, 1e-9)}


def _read_outputs(logits: np.ndarray, prep: Preprocessing, top_k: int) -> list:
    """Per image {`top`: the k likeliest (name, probability)}; multilabel adds `labels`, the
    (name, probability) pairs at or above their threshold, likeliest first, and
    `probabilities`, every label's by name in label order."""
    names = list(prep.class_names)
    k = min(top_k, len(names))
    probabilities = output_probabilities(logits, prep.multilabel)
    if not prep.multilabel:
        return [{"top": top_classes(row, names, k)} for row in probabilities]
    rows = []
    for row, decided in zip(probabilities, label_decisions(logits, prep.thresholds)):
        above = {name for name, on in zip(names, decided) if on}
        likeliest = top_classes(row, names, len(names))
        rows.append({"top": likeliest[:k],
                     "labels": [(name, p) for name, p in likeliest if name in above],
                     "probabilities": {name: float(p) for name, p in zip(names, row)}})
    return rows
