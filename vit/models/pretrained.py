"""Published weights by name, and where their file comes from: `resolve_weights` and
`build_pretrained` (the registry itself, `PRETRAINED`, is pretrained_registry.py).

`resolve_weights(spec, model)` turns what a user types (`True`, a tag, `Name.tag`, a path, a URL)
into a local file:
- plain URLs go through the project's one downloader (`vit.download`) into `VIT_PADDLE_HOME`
  (default `~/.cache/vit-paddle`), with a progress bar and an atomic write; the SHA-256 of the
  first download is recorded beside the file and checked on every later use; a file already in
  PaddleClas's own cache (`~/.paddleclas/weights/`) is used where it is there;
- `VIT_PADDLE_WEIGHTS_MIRROR` replaces the scheme and host of every registry URL (the path stays);
- hub repos go through `huggingface_hub` (its cache, `HF_ENDPOINT`, `HF_HUB_OFFLINE`).
A download that cannot be made is one line naming the URL and the path to place the file at.
"""

import dataclasses
import difflib
import hashlib
import os
import urllib.parse
from pathlib import Path
from typing import List, Optional, Union

from ..download import fetch
from ..errors import CheckpointError, DataError
from ..files import cache_home
from .convert import convert_layout, read_weights
from .pretrained_registry import (PRETRAINED, Weights, find_weights, list_pretrained,
                                  no_published_weights)
from .variants import build_model, model_args
from .weights import load_converted


def weights_home() -> Path:
    """The cache of downloaded weights (`files.cache_home`)."""
    return cache_home()


def mirrored(url: str) -> str:
    """`url` with its scheme and host replaced by `VIT_PADDLE_WEIGHTS_MIRROR` when it is set."""
    mirror = os.environ.get("VIT_PADDLE_WEIGHTS_MIRROR")
    if not mirror:
        return url
    return mirror.rstrip("/") + urllib.parse.urlparse(url).path


@dataclasses.dataclass(frozen=True)
class ResolvedWeights:
    """A local weights file or folder, the layout to read it in (None: recognise it), and the
    registry entry it came from (None for a user's own file or URL)."""

    path: Path
    fmt: Optional[str]
    entry: Optional[Weights]


def resolve_weights(spec: Union[str, bool, os.PathLike], model: str,
                    progress=None) -> ResolvedWeights:
    """Turn `pretrained=` (True: the model's default entry; a tag; `Name.tag`; a path; a URL)
    into a local file, downloading it into the cache when needed.

    Raises:
        ModelError: a name or tag the registry does not have.
        CheckpointError: a path that does not exist, or a download that cannot be made (naming
            the URL and where to put the file by hand).
    """
    if spec is True:
        if model not in PRETRAINED:
            raise no_published_weights(model)
        spec = PRETRAINED[model][0].name
    spec = str(spec)
    if spec.startswith(("http://", "https://")):  # a folder per URL: names may repeat
        folder = weights_home() / "url" / hashlib.sha256(spec.encode()).hexdigest()[:16]
        return ResolvedWeights(_download(spec, folder / Path(urllib.parse.urlparse(spec).path)
                                         .name, None, progress), None, None)
    entry = find_weights(spec, model)
    if entry is None:
        path = Path(spec).expanduser()
        if not path.exists():
            close = difflib.get_close_matches(spec, list_pretrained(), n=1, cutoff=0.6)
            raise CheckpointError(f"weights '{spec}' are neither a file nor a registered name",
                                  f"did you mean '{close[0]}'?" if close else "check the path, "
                                  "or give a registered name (`list_pretrained()`)")
        return ResolvedWeights(path, None, None)
    if entry.hub:
        return ResolvedWeights(_hub_download(entry), entry.source, entry)
    dest = weights_home() / entry.model / entry.file_name
    paddleclas = Path.home() / ".paddleclas" / "weights" / entry.file_name
    if entry.source == "paddle" and not dest.is_file() and paddleclas.is_file():
        dest = paddleclas  # PaddleClas downloaded it before: checked like our own cache
    return ResolvedWeights(_download(mirrored(entry.url), dest, entry.sha256, progress),
                           entry.source, entry)


def _download(url: str, dest: Path, sha256: Optional[str], progress) -> Path:
    """The checked file at `dest`, downloaded from `url` when missing or not matching."""
    hint = f"download it by hand to {dest}, or set VIT_PADDLE_WEIGHTS_MIRROR to a mirror"
    try:
        return fetch(url, dest, sha256, progress=progress or _bar(dest.name), hint=hint)
    except DataError as error:
        raise CheckpointError(error.message, error.hint) from None


def _bar(name: str):
    """A tqdm progress bar as a download's (bytes, total) callback."""
    from tqdm import tqdm

    state = {}

    def update(done: int, total: Optional[int]):
        if "bar" not in state:
            state["bar"] = tqdm(total=total, unit="B", unit_scale=True, desc=name, leave=False)
        state["bar"].update(done - state["bar"].n)
        if total is not None and done >= total:
            state["bar"].close()
    return update


def _hub_download(entry: Weights) -> Path:
    """A hub repo through huggingface_hub: the snapshot folder (config.json and the weights)
    for transformers' layout, the weights file for timm's."""
    try:
        from huggingface_hub import hf_hub_download
        from huggingface_hub.errors import EntryNotFoundError
    except ImportError:
        raise CheckpointError(f"{entry.name} is on the Hugging Face hub and reading it needs "
                              "huggingface_hub", "pip install huggingface_hub") from None
    try:
        hf_hub_download(entry.hub, "config.json")
        for weights_file in ("model.safetensors", "pytorch_model.bin"):
            try:
                path = Path(hf_hub_download(entry.hub, weights_file))
            except EntryNotFoundError:
                continue
            return path if entry.source == "timm" else path.parent
        raise CheckpointError(f"{entry.hub} has neither model.safetensors nor "
                              "pytorch_model.bin", "pass a folder of the weights as a path")
    except CheckpointError:
        raise
    except Exception as error:  # huggingface_hub's errors: offline, not found, HTTP
        reason = f"{type(error).__name__}: {str(error).splitlines()[0][:160]}"
        raise CheckpointError(f"cannot fetch {entry.hub} from the Hugging Face hub ({reason})",
                              "check the connection or HF_ENDPOINT; offline, download the repo "
                              "with `huggingface-cli download` first, or pass its folder as a "
                              "path") from None


@dataclasses.dataclass
class Published:
    """A model built from published weights, and what came with them."""

    model: object  # the paddle.nn.Layer
    args: dict  # its constructor arguments
    path: Path  # the local weights file or folder
    class_names: List[str]


def build_pretrained(name: str, spec, progress=None, **overrides) -> Published:
    """Model `name` with the weights `spec` names (see `resolve_weights`) loaded.

    Without `num_classes` the model keeps the weights' classifier (a registry entry's class
    count, or the head a file holds); another count gets a zero head. The weights' pre-logits
    layer is kept only together with their head, as the paper fine-tunes without it.
    """
    resolved = resolve_weights(spec, name, progress)
    state, meta = read_weights(resolved.path)
    converted, facts = convert_layout(state, resolved.fmt, meta)
    head = converted.get("head.weight")
    theirs = head.shape[1] if head is not None else 0
    overrides.setdefault("num_classes", theirs)
    if overrides["num_classes"] == theirs and "pre_logits.fc.weight" in converted:
        overrides.setdefault("representation_size", converted["pre_logits.fc.weight"].shape[1])
    model = build_model(name, **overrides)
    load_converted(model, converted, resolved.path)
    classes = overrides["num_classes"]
    if classes == theirs and facts.get("class_names"):
        names = list(facts["class_names"])
    elif resolved.entry is not None and classes == resolved.entry.num_classes:
        names = resolved.entry.class_names()
    else:
        names = [str(i) for i in range(classes)]
    return Published(model, model_args(name, **overrides), resolved.path, names)
