"""Checkpoints: a model, the state to resume training, and what is needed to rebuild the model.

A checkpoint named TAG in a run's `checkpoints/` folder is three files, each written atomically:
- `TAG.pdparams`: the model's state dict (PaddleClas's key names);
- `TAG.pdopt`: optimizer, scheduler, EMA weights and the loop's position and history;
- `TAG.json`: written last, it records the model name and arguments, class names, image size,
  mean/std, epoch and step, metrics, the config, and the SHA-256 of the other two files. A
  checkpoint whose files do not match its JSON (a run killed while saving) is not used.
"""

import hashlib
import json
import logging
import time
from pathlib import Path
from typing import List, Optional

from ..errors import CheckpointError
from ..serialization import safe_load, save, write_text_atomic

log = logging.getLogger(__name__)

FORMAT = "vit-paddle-checkpoint/1"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(folder, tag: str, model_state: dict, meta: dict,
                    training_state: Optional[dict] = None) -> Path:
    """Write checkpoint `tag` into `folder`; return the path of its `.pdparams`."""
    folder = Path(folder)
    params = save(model_state, folder / f"{tag}.pdparams")
    files = {"pdparams": {"name": params.name, "sha256": _sha256(params)}}
    if training_state is not None:
        opt = save(training_state, folder / f"{tag}.pdopt")
        files["pdopt"] = {"name": opt.name, "sha256": _sha256(opt)}
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
                              "rebuilt", "keep the .json beside the .pdparams, or pass -c CONFIG")
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
        if not path.is_file() or _sha256(path) != record["sha256"]:
            return False
    return True


def load_checkpoint(params_path, with_training_state: bool = False):
    """Load (model state, meta, training state or None) from a `.pdparams` path, safely."""
    params_path = Path(params_path)
    meta = read_meta(params_path)
    if not is_complete(params_path):
        raise CheckpointError(f"checkpoint {params_path} is incomplete or altered (its files do "
                              "not match the hashes in its .json)",
                              "use an earlier checkpoint of the run")
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
    target = Path(target)
    if target.suffix == ".pdparams":
        if not target.is_file():
            raise CheckpointError(f"train.resume '{target}' does not exist", "check the path")
        return target
    folder = target / "checkpoints" if (target / "checkpoints").is_dir() else target
    if not folder.is_dir():
        raise CheckpointError(f"train.resume '{target}' is neither a checkpoint nor a run folder",
                              "give output/<run> or a .pdparams file")
    newest = newest_complete_checkpoint(folder)
    if newest is None:
        raise CheckpointError(f"no complete checkpoint to resume in {folder}",
                              "start the run again without train.resume")
    return newest


def prune_epoch_checkpoints(folder, keep: int):
    """Delete all but the newest `keep` epoch checkpoints (best and interrupted stay)."""
    epochs = sorted(Path(folder).glob("epoch_*.json"))
    for record in epochs[:-keep] if keep > 0 else epochs:
        for suffix in (".pdparams", ".pdopt", ".json"):
            record.with_suffix(suffix).unlink(missing_ok=True)


def architecture_differences(meta: dict, model_name: str, model_args: dict,
                             num_classes: int) -> List[str]:
    """What differs between a checkpoint's model and the configured one (empty: the same)."""
    differences = []
    saved = meta.get("model", {})
    if saved.get("name") != model_name:
        differences.append(f"model {saved.get('name')} vs {model_name}")
    saved_args = saved.get("args", {})
    for key in sorted(set(saved_args) | set(model_args)):
        if key in ("drop_rate", "attn_drop_rate", "drop_path_rate", "zero_head"):
            continue  # regularisation may change between runs without changing the weights
        if _norm(saved_args.get(key)) != _norm(model_args.get(key)):
            differences.append(f"{key} {saved_args.get(key)} vs {model_args.get(key)}")
    if meta.get("num_classes") != num_classes:
        differences.append(f"{meta.get('num_classes')} classes vs {num_classes}")
    return differences


def _norm(value):
    return list(value) if isinstance(value, tuple) else value
