"""The registry of published weights: one `Weights` row per file, beside the model registry.

Mostly a table of data: each registered model may have tagged entries (`PRETRAINED`), as timm's
`name.tag`: PaddleClas's `.pdparams`, Google's `.npz` (the paper's ImageNet-21k checkpoints, the
same fine-tuned on ImageNet-1k, and the AugReg ones of "How to train your ViT?"), and Hugging Face
hub repos (`google/vit-*`, `timm/vit_*`). An entry says what its file needs to be used right: the
format, the image size, the classes, and the preprocessing it was trained with. `find_weights`
looks a name up; where a file comes from is pretrained.py's.
"""

import dataclasses
import difflib
import urllib.parse
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from ..errors import ModelError
from .variants import VARIANTS

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
         num_classes: int = 1000, interpolation: str = "bilinear", crop_pct: float = 1.0,
         top1: Optional[float] = None) -> Weights:
    return Weights(model, tag, source, hub=repo, image_size=image_size,
                   num_classes=num_classes, classes=IMAGENET_1K if num_classes == 1000 else None,
                   interpolation=interpolation, crop_pct=crop_pct, reported_top1=top1)


_AUGREG = "augreg/{}-i21k-300ep-lr_0.001-aug_{}-wd_{}-do_{}-sd_{}"
_AUGREG_FT = "--imagenet2012-steps_20k-lr_{}-res_{}.npz"
# the AugReg ImageNet-21k runs that timm and big_vision recommend for ViT-Ti/16 and ViT-S/16
_AUGREG_TI16 = _AUGREG.format("Ti_16", "none", "0.03", "0.0", "0.0")
_AUGREG_S16 = _AUGREG.format("S_16", "light1", "0.03", "0.0", "0.0")

# ImageNet-21k has 21,843 classes; its checkpoints keep the paper's representation layer
# (`pre_logits`), which fine-tuning into a model without one drops.
_IN21K = 21843

_ENTRIES = [
    # timm's copies of the AugReg ViT-Ti/16 and ViT-S/16 first (the default): the top-1 is timm's
    # (results-imagenet.csv, measured with this preprocessing), the hub needs no Google storage
    _hub("ViT_Ti_patch16_224", "timm_augreg_in21k_ft_in1k",
         "timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k", "timm", interpolation="bicubic",
         crop_pct=0.9, top1=0.75452),
    _google("ViT_Ti_patch16_224", "augreg_in21k_ft_in1k",
            _AUGREG_TI16 + _AUGREG_FT.format("0.03", 224)),
    _google("ViT_Ti_patch16_224", "augreg_in21k", _AUGREG_TI16 + ".npz", num_classes=_IN21K),
    _hub("ViT_S_patch16_224", "timm_augreg_in21k_ft_in1k",
         "timm/vit_small_patch16_224.augreg_in21k_ft_in1k", "timm", interpolation="bicubic",
         crop_pct=0.9, top1=0.81402),
    _google("ViT_S_patch16_224", "augreg_in21k_ft_in1k",
            _AUGREG_S16 + _AUGREG_FT.format("0.03", 224)),
    _google("ViT_S_patch16_224", "augreg_in21k", _AUGREG_S16 + ".npz", num_classes=_IN21K),
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
            raise no_published_weights(name)
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


def no_published_weights(model: str) -> ModelError:
    """The error for weights asked of a registered model that has none, naming those that do."""
    return ModelError(f"{model} has no published weights in the registry",
                      "give a weights file or URL, or a model that has some: "
                      + ", ".join(sorted(PRETRAINED)))


def _looks_like_a_path(spec: str) -> bool:
    return "/" in spec or spec.endswith((".pdparams", ".safetensors", ".npz", ".pth", ".bin"))
