"""Published weights by name: the registry beside the model registry, and where a file comes from.

Each registered model may have tagged entries (`PRETRAINED`), as timm's `name.tag`: PaddleClas's
`.pdparams`, Google's `.npz` (the paper's ImageNet-21k checkpoints, the same fine-tuned on
ImageNet-1k, and the AugReg ones of "How to train your ViT?"), and Hugging Face hub repos
(`google/vit-*`, `timm/vit_*`). An entry says what its file needs to be used right: the format,
the image size, the classes, and the preprocessing it was trained with.

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
from typing import Dict, List, Optional, Tuple, Union

from ..download import fetch
from ..errors import CheckpointError, DataError, ModelError
from .convert import convert_layout, read_weights
from .variants import VARIANTS, build_model, model_args
from .weights import load_converted

PADDLECLAS = "https://paddle-imagenet-models-name.bj.bcebos.com/dygraph/"
GOOGLE = "https://storage.googleapis.com/vit_models/"
IMAGENET_1K = "imagenet1k"  # the class names shipped with the package


@dataclasses.dataclass(frozen=True)
class Weights:
    """One published set of weights for a registered model.

    Attributes:
        model: the registered model name.
        tag: what distinguishes it (`Name.tag`); the first entry of a model is its default.
        source: `paddle`, `jax`, `hf` or `timm`: the layout the converter reads.
        url: a plain download (PaddleClas, Google), or None for a hub repo.
        hub: a Hugging Face hub repo id, or None.
        image_size, num_classes: what the weights were trained for.
        classes: `imagenet1k` (names shipped), or None (numbered).
        mean, std, interpolation, crop_pct: the preprocessing they were trained with.
        reported_top1: the ImageNet top-1 their publisher reports, for orientation.
        sha256: pinned where published; None records the first download's.
    """

    model: str
    tag: str
    source: str
    url: Optional[str] = None
    hub: Optional[str] = None
    image_size: int = 224
    num_classes: int = 1000
    classes: Optional[str] = IMAGENET_1K
    mean: Tuple[float, ...] = (0.5, 0.5, 0.5)
    std: Tuple[float, ...] = (0.5, 0.5, 0.5)
    interpolation: str = "bilinear"
    crop_pct: float = 1.0
    reported_top1: Optional[float] = None
    sha256: Optional[str] = None

    @property
    def name(self) -> str:
        return f"{self.model}.{self.tag}"

    @property
    def file_name(self) -> str:
        return Path(urllib.parse.urlparse(self.url).path).name if self.url else self.hub

    def class_names(self) -> List[str]:
        """The names of the weights' classes (numbers where none are shipped)."""
        if self.classes == IMAGENET_1K and self.num_classes == 1000:
            text = (Path(__file__).with_name("imagenet1k_classes.txt")).read_text(encoding="utf-8")
            return text.splitlines()
        return [str(i) for i in range(self.num_classes)]


def _paddleclas(model: str, image_size: int, top1: float) -> Weights:
    # PaddleClas evaluates at 224 by resizing the short side to 256 and cropping 224 (0.875), at
    # 384 by resizing to 384 and cropping 384; bilinear, mean = std = 0.5
    return Weights(model, "paddleclas_in1k", "paddle", f"{PADDLECLAS}{model}_pretrained.pdparams",
                   image_size=image_size, crop_pct=0.875 if image_size == 224 else 1.0,
                   reported_top1=top1)


def _google(model: str, tag: str, path: str, image_size: int = 224,
            num_classes: int = 1000) -> Weights:
    # big_vision evaluates at 224 by resizing to 224 / 0.875 and cropping, at 384 without a crop
    return Weights(model, tag, "jax", GOOGLE + path, image_size=image_size,
                   num_classes=num_classes, classes=IMAGENET_1K if num_classes == 1000 else None,
                   crop_pct=1.0 if image_size == 384 else 0.875)


def _hub(model: str, tag: str, repo: str, source: str, image_size: int = 224,
         num_classes: int = 1000, interpolation: str = "bilinear",
         crop_pct: float = 1.0) -> Weights:
    return Weights(model, tag, source, hub=repo, image_size=image_size,
                   num_classes=num_classes, classes=IMAGENET_1K if num_classes == 1000 else None,
                   interpolation=interpolation, crop_pct=crop_pct)


_AUGREG = "augreg/{}-i21k-300ep-lr_0.001-aug_{}-wd_{}-do_{}-sd_{}"
_AUGREG_FT = "--imagenet2012-steps_20k-lr_{}-res_{}.npz"

# ImageNet-21k has 21,843 classes; its checkpoints keep the paper's representation layer
# (`pre_logits`), which fine-tuning into a model without one drops.
_IN21K = 21843

_ENTRIES = [
    _paddleclas("ViT_small_patch16_224", 224, 0.7769),
    _paddleclas("ViT_base_patch16_224", 224, 0.8195),
    _google("ViT_base_patch16_224", "orig_in21k", "imagenet21k/ViT-B_16.npz",
            num_classes=_IN21K),
    _google("ViT_base_patch16_224", "orig_in21k_ft_in1k",
            "imagenet21k+imagenet2012/ViT-B_16-224.npz"),
    _google("ViT_base_patch16_224", "augreg_in21k",
            _AUGREG.format("B_16", "medium1", "0.1", "0.0", "0.0") + ".npz", num_classes=_IN21K),
    _google("ViT_base_patch16_224", "augreg_in21k_ft_in1k",
            _AUGREG.format("B_16", "medium1", "0.1", "0.0", "0.0") + _AUGREG_FT.format("0.01",
                                                                                     224)),
    _hub("ViT_base_patch16_224", "hf_in21k_ft_in1k", "google/vit-base-patch16-224", "hf"),
    _hub("ViT_base_patch16_224", "hf_in21k", "google/vit-base-patch16-224-in21k", "hf",
         num_classes=0),
    _hub("ViT_base_patch16_224", "timm_augreg_in21k_ft_in1k",
         "timm/vit_base_patch16_224.augreg_in21k_ft_in1k", "timm", interpolation="bicubic",
         crop_pct=0.9),
    _paddleclas("ViT_base_patch16_384", 384, 0.8414),
    _google("ViT_base_patch16_384", "orig_in21k_ft_in1k", "imagenet21k+imagenet2012/ViT-B_16.npz",
            image_size=384),
    _google("ViT_base_patch16_384", "augreg_in21k_ft_in1k",
            _AUGREG.format("B_16", "medium1", "0.1", "0.0", "0.0") + _AUGREG_FT.format("0.01",
                                                                                     384),
            image_size=384),
    _hub("ViT_base_patch16_384", "hf_in21k_ft_in1k", "google/vit-base-patch16-384", "hf",
         image_size=384),
    _hub("ViT_base_patch16_384", "timm_augreg_in21k_ft_in1k",
         "timm/vit_base_patch16_384.augreg_in21k_ft_in1k", "timm", image_size=384,
         interpolation="bicubic"),
    _google("ViT_base_patch32_224", "orig_in21k", "imagenet21k/ViT-B_32.npz", num_classes=_IN21K),
    _google("ViT_base_patch32_224", "augreg_in21k_ft_in1k",
            _AUGREG.format("B_32", "medium1", "0.03", "0.0", "0.0") + _AUGREG_FT.format("0.03",
                                                                                      224)),
    _paddleclas("ViT_base_patch32_384", 384, 0.8176),
    _google("ViT_base_patch32_384", "orig_in21k_ft_in1k", "imagenet21k+imagenet2012/ViT-B_32.npz",
            image_size=384),
    _hub("ViT_base_patch32_384", "hf_in21k_ft_in1k", "google/vit-base-patch32-384", "hf",
         image_size=384),
    _paddleclas("ViT_large_patch16_224", 224, 0.8323),
    _google("ViT_large_patch16_224", "orig_in21k", "imagenet21k/ViT-L_16.npz",
            num_classes=_IN21K),
    _google("ViT_large_patch16_224", "orig_in21k_ft_in1k",
            "imagenet21k+imagenet2012/ViT-L_16-224.npz"),
    _hub("ViT_large_patch16_224", "hf_in21k_ft_in1k", "google/vit-large-patch16-224", "hf"),
    _paddleclas("ViT_large_patch16_384", 384, 0.8513),
    _google("ViT_large_patch16_384", "orig_in21k_ft_in1k",
            "imagenet21k+imagenet2012/ViT-L_16.npz", image_size=384),
    _hub("ViT_large_patch16_384", "hf_in21k_ft_in1k", "google/vit-large-patch16-384", "hf",
         image_size=384),
    _paddleclas("ViT_large_patch32_384", 384, 0.8153),
    _google("ViT_large_patch32_384", "orig_in21k_ft_in1k",
            "imagenet21k+imagenet2012/ViT-L_32.npz", image_size=384),
    _hub("ViT_large_patch32_384", "hf_in21k_ft_in1k", "google/vit-large-patch32-384", "hf",
         image_size=384),
    _google("ViT_huge_patch14_224", "orig_in21k", "imagenet21k/ViT-H_14.npz",
            num_classes=_IN21K),
    _hub("ViT_huge_patch14_224", "hf_in21k", "google/vit-huge-patch14-224-in21k", "hf",
         num_classes=0),
]

PRETRAINED: Dict[str, List[Weights]] = {}
for _entry in _ENTRIES:
    PRETRAINED.setdefault(_entry.model, []).append(_entry)


def list_pretrained(pattern: str = "") -> List[str]:
    """`Name.tag` of every registered set of weights that contains `pattern`, models in name
    order, each model's default first."""
    return [entry.name for model in sorted(PRETRAINED) for entry in PRETRAINED[model]
            if pattern.lower() in entry.name.lower()]


def find_weights(spec: str, model: Optional[str] = None) -> Optional[Weights]:
    """The registry entry `spec` names: `Name`, `Name.tag`, or (with `model`) a bare tag;
    None when `spec` names no entry (a path or a URL).

    Raises:
        ModelError: `Name.tag` of a registered model with no such tag, or a model without
            published weights, listing what there is.
    """
    name, _, tag = spec.partition(".")
    if name not in PRETRAINED and model in PRETRAINED and not tag and \
            any(e.tag == spec for e in PRETRAINED[model]):
        name, tag = model, spec
    if name not in PRETRAINED:
        if name in VARIANTS and not _looks_like_a_path(spec):
            raise ModelError(f"{name} has no published weights in the registry",
                             "give a weights file or URL; `tools/convert.py --list` lists "
                             "the registered ones")
        return None
    entries = PRETRAINED[name]
    if not tag:
        return entries[0]
    for entry in entries:
        if entry.tag == tag:
            return entry
    close = difflib.get_close_matches(tag, [e.tag for e in entries], n=1, cutoff=0.4)
    raise ModelError(f"{name} has no weights tagged '{tag}'",
                     f"did you mean '{name}.{close[0]}'?" if close else
                     "tags: " + ", ".join(e.tag for e in entries))


def _looks_like_a_path(spec: str) -> bool:
    return "/" in spec or spec.endswith((".pdparams", ".safetensors", ".npz", ".pth", ".bin"))


def weights_home() -> Path:
    """The cache of downloaded weights: `VIT_PADDLE_HOME`, else `~/.cache/vit-paddle`."""
    return Path(os.environ.get("VIT_PADDLE_HOME") or Path.home() / ".cache" / "vit-paddle")


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
            raise ModelError(f"{model} has no published weights in the registry",
                             "give a weights file or URL; `tools/convert.py --list` lists "
                             "the registered ones")
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
            raise CheckpointError(f"weights '{spec}' are neither a file nor a registered name",
                                  "check the path, or see `tools/convert.py --list`")
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
