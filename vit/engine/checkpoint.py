"""Checkpoints: a model, the state to resume training, and what is needed to rebuild the model.

A checkpoint named TAG in a run's `checkpoints/` folder is three files, each written atomically:
- `TAG.pdparams`: the model's state dict (PaddleClas's key names);
- `TAG.pdopt`: optimizer, scheduler, EMA weights and the loop's position and history;
- `TAG.json`: written last, it records the model record (model_record.py: name, arguments,
  preprocessing), epoch and step, metrics, the config, and the SHA-256 of the other two
  files. A checkpoint whose files do not match its JSON (a run killed while saving) is not
  used.
`Checkpointer` writes a run's checkpoints; the functions below find, check and read them.
"""

import json
import logging
import time
from pathlib import Path
from typing import Optional

from ..errors import CheckpointError, param
from ..files import file_digest, write_text_atomic
from ..serialization import safe_load, save
from .model_record import ModelRecord, read_model_record
from .run_folder import RunFolder

log = logging.getLogger(__name__)

# Format 3 keeps the model record in its one shape (model_record.py); formats 1 and 2 are read
# by `read_model_record`.
FORMAT = "vit-paddle-checkpoint/3"


class Checkpointer:
    """Writes the checkpoints of one run: after each epoch, the best by val top-1, and on
    interruption. Only rank 0 writes (`enabled`).

    Args:
        folder: the run's `checkpoints/` folder.
        model: the run's model record, written into every checkpoint; a multilabel run
            updates its thresholds at each validation (`ModelRecord.with_thresholds`).
        config: the run's config (plain data).
        keep: epoch checkpoints kept besides `best` and `interrupted`.
        enabled: False on ranks other than 0.
    """

    def __init__(self, folder, model: ModelRecord, config: dict, keep: int,
                 enabled: bool = True):
        self.folder = Path(folder)
        self.model = model
        self.config = config
        self.keep = keep
        self.enabled = enabled

    def save(self, tag: str, weights: dict, position: dict, metrics: dict,
             training: Optional[dict] = None) -> Optional[Path]:
        """Write checkpoint `tag`; return its `.pdparams` path (None when disabled).

        Args:
            weights: the model's state dict.
            position: `epoch`, `batch_in_epoch`, `global_step` and the best so far
                (`best_by`, `best_value`, `best_epoch`).
            metrics: the epoch's record, or {} mid-epoch.
            training: optimizer, scheduler, EMA and loop state; None for a weights-only
                checkpoint (`best`).
        """
        if not self.enabled:
            return None
        return save_checkpoint(self.folder, tag, weights,
                               {"model": self.model.to_dict(), "config": self.config, **position,
                                "metrics": metrics}, training)

    def save_epoch(self, epoch: int, weights: dict, position: dict, metrics: dict,
                   training: dict) -> Optional[Path]:
        """The checkpoint after `epoch` (it supersedes an `interrupted` one), then pruning to
        the newest `keep`. Returns its `.pdparams` (None when disabled)."""
        if not self.enabled:
            return None
        path = self.save(f"epoch_{epoch:03d}", weights, position, metrics, training)
        for suffix in (".json", ".pdparams", ".pdopt"):
            (self.folder / f"interrupted{suffix}").unlink(missing_ok=True)
        prune_epoch_checkpoints(self.folder, self.keep)
        return path

    def save_best(self, weights: dict, position: dict, metrics: dict,
                  ema: bool) -> Optional[Path]:
        """`best`: the weights of the epoch that improved val top-1, without training state
        (`ema`: they are the EMA weights, which the JSON records)."""
        return self.save(RunFolder.BEST, weights, {**position, "ema": ema}, metrics)


def save_checkpoint(folder, tag: str, model_state: dict, meta: dict,
                    training_state: Optional[dict] = None) -> Path:
    """Write checkpoint `tag` into `folder`; return the path of its `.pdparams`."""
    folder = Path(folder)
    params = save(model_state, folder / f"{tag}.pdparams")
    files = {"pdparams": {"name": params.name, "sha256": file_digest(params)}}
    if training_state is not None:
        opt = save(training_state, folder / f"{tag}.pdopt")
        files["pdopt"] = {"name": opt.name, "sha256": file_digest(opt)}
    else:
        (folder / f"{tag}.pdopt").unlink(missing_ok=True)
    record = {"format": FORMAT, "tag": tag, "saved_at": time.strftime("%Y-%m-%d %H:%M:%S"),
              **meta, "files": files}
    write_text_atomic(folder / f"{tag}.json", json.dumps(record, indent=2) + "\n")
    return params


def read_meta(params_path) -> dict:
    """The JSON record beside a `.pdparams` file.

    Raises:
        CheckpointError: it is missing or unreadable.
    """
    path = Path(params_path).with_suffix(".json")
    if not path.is_file():
        raise CheckpointError(f"{path} is missing, so the model in {params_path} cannot be "
                              "rebuilt", "keep the .json beside the .pdparams")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise CheckpointError(f"{path} is not valid JSON ({error})", "the file is damaged") from None


def is_complete(params_path) -> bool:
    """Whether the checkpoint's files are all there and match the hashes in its JSON."""
    params_path = Path(params_path)
    try:
        meta = read_meta(params_path)
    except CheckpointError:
        return False
    for record in meta.get("files", {}).values():
        path = params_path.parent / record["name"]
        if not path.is_file() or file_digest(path) != record["sha256"]:
            return False
    return True


def load_checkpoint(params_path, with_training_state: bool = False):
    """Load (model state, meta, training state or None) from a `.pdparams` path, safely; the
    model record in `meta` is checked (`checkpoint_record` reads it).

    Raises:
        CheckpointError: missing, altered or unsafe files, or an unusable model record.
    """
    params_path = Path(params_path)
    meta = read_meta(params_path)
    if not is_complete(params_path):
        raise CheckpointError(f"checkpoint {params_path} is incomplete or altered (its files do "
                              "not match the hashes in its .json)",
                              "use an earlier checkpoint of the run")
    checkpoint_record(params_path, meta)
    state = safe_load(params_path)
    # paddle.save records its own name table in Layer state dicts; it is not a weight
    state.pop("StructuredToParameterName@@", None)
    training = None
    if with_training_state:
        opt_path = params_path.with_suffix(".pdopt")
        if not opt_path.is_file():
            raise CheckpointError(f"{params_path} has no .pdopt, so training cannot resume from "
                                  "it", "resume from an epoch checkpoint")
        training = safe_load(opt_path)
    return state, meta, training


def checkpoint_record(params_path, meta: dict) -> ModelRecord:
    """The model record of the checkpoint whose `.pdparams` is `params_path` (`meta`: its JSON)."""
    return read_model_record(meta, str(Path(params_path).with_suffix(".json")))


def newest_complete_checkpoint(folder) -> Optional[Path]:
    """The resumable checkpoint in `folder` with the most optimizer steps whose files match
    their hashes; older ones are not hashed (they can be gigabytes)."""
    candidates = []
    for params in Path(folder).glob("*.pdparams"):
        if params.with_suffix(".pdopt").is_file() and params.with_suffix(".json").is_file():
            try:
                step = read_meta(params).get("global_step", 0)
            except CheckpointError:
                continue
            candidates.append((step, params.stat().st_mtime, params))
    for _, _, params in sorted(candidates, reverse=True):
        if is_complete(params):
            return params
    return None


def find_resume_checkpoint(target) -> Path:
    """Resolve `train.resume`: a `.pdparams` file, a checkpoints folder or a run folder."""
    target, resume = Path(target), param("train.resume")
    if target.suffix == ".pdparams":
        if not target.is_file():
            raise CheckpointError(f"{resume} '{target}' does not exist", "check the path")
        return target
    run = RunFolder(target)
    folder = run.checkpoints if run.checkpoints.is_dir() else target
    if not folder.is_dir():
        raise CheckpointError(f"{resume} '{target}' is neither a checkpoint nor a run folder",
                              "give output/<run> or a .pdparams file")
    newest = newest_complete_checkpoint(folder)
    if newest is None:
        raise CheckpointError(f"no complete checkpoint to resume in {folder}",
                              f"start the run again without {resume}")
    return newest


def prune_epoch_checkpoints(folder, keep: int):
    """Delete all but the newest `keep` epoch checkpoints (best and interrupted stay)."""
    epochs = sorted(Path(folder).glob("epoch_*.json"))
    for record in epochs[:-keep] if keep > 0 else epochs:
        for suffix in (".pdparams", ".pdopt", ".json"):
            record.with_suffix(suffix).unlink(missing_ok=True)
