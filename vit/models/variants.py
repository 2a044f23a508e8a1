"""The model registry: one row per named ViT, and `build_model` to build one by name.

Rows follow the paper's Table 1 (Base, Large, Huge) with the patch size and resolution in the name,
PaddleClas's naming scheme, so PaddleClas's published `.pdparams` load into the model of the same
name. `Ti` and `S` are the smaller ViTs of DeiT and "How to train your ViT?" (AugReg), named by
that paper's letters because PaddleClas's `small` and our CPU-sized `tiny` are other models
(docs/models.md). The `tiny` rows are CPU-sized models for small images used by the default
configs, `mini` a larger one of them.
"""

import difflib
import inspect
from typing import Dict, List, Sequence, Tuple

from ..errors import ModelError
from .baselines import SmallImageResNet
from .vision_transformer import VisionTransformer

# The paper's ViTs use LayerNorm epsilon 1e-6 (Flax's default) and a bias on q, k and v.
_PAPER = dict(qkv_bias=True, epsilon=1e-6)
_BASE = dict(embed_dim=768, depth=12, num_heads=12, mlp_ratio=4, **_PAPER)
_LARGE = dict(embed_dim=1024, depth=24, num_heads=16, mlp_ratio=4, **_PAPER)
_HUGE = dict(embed_dim=1280, depth=32, num_heads=16, mlp_ratio=4, **_PAPER)
# DeiT's and AugReg's Ti and S (big_vision's `decode_variant`): 64 wide per head, as B
_TI = dict(embed_dim=192, depth=12, num_heads=3, mlp_ratio=4, **_PAPER)
_S = dict(embed_dim=384, depth=12, num_heads=6, mlp_ratio=4, **_PAPER)

VARIANTS: Dict[str, dict] = {
    # PaddleClas's "small" (not DeiT's 384-wide ViT-S; see docs/models.md): 768 wide, 8 blocks,
    # MLP ratio 3, no q/k/v bias, and the attention scaled by 768^-0.5 rather than per head.
    "ViT_small_patch16_224": dict(img_size=224, patch_size=16, embed_dim=768, depth=8,
                                  num_heads=8, mlp_ratio=3, qkv_bias=False, qk_scale=768 ** -0.5,
                                  epsilon=1e-5),
    # ViT-Ti/16 and ViT-S/16 (DeiT, AugReg; timm's vit_tiny_patch16_224, vit_small_patch16_224)
    "ViT_Ti_patch16_224": dict(img_size=224, patch_size=16, **_TI),
    "ViT_S_patch16_224": dict(img_size=224, patch_size=16, **_S),
    "ViT_base_patch16_224": dict(img_size=224, patch_size=16, **_BASE),
    "ViT_base_patch16_384": dict(img_size=384, patch_size=16, **_BASE),
    "ViT_base_patch32_224": dict(img_size=224, patch_size=32, **_BASE),
    "ViT_base_patch32_384": dict(img_size=384, patch_size=32, **_BASE),
    "ViT_large_patch16_224": dict(img_size=224, patch_size=16, **_LARGE),
    "ViT_large_patch16_384": dict(img_size=384, patch_size=16, **_LARGE),
    "ViT_large_patch32_384": dict(img_size=384, patch_size=32, **_LARGE),
    "ViT_huge_patch14_224": dict(img_size=224, patch_size=14, **_HUGE),
    # CPU-sized: 16x16 inputs (the 8x8 digits upsampled) in 4x4 patches, 16 tokens + class token
    "ViT_tiny_patch4_16": dict(img_size=16, patch_size=4, embed_dim=64, depth=6, num_heads=4,
                               mlp_ratio=2, **_PAPER),
    # CPU-sized, five times the parameters of tiny (1.07 M), for the transfer experiment's
    # larger pair: 16x16 inputs, width 128, 8 blocks
    "ViT_mini_patch4_16": dict(img_size=16, patch_size=4, embed_dim=128, depth=8, num_heads=4,
                               mlp_ratio=2, **_PAPER),
    # CPU-sized for 32x32 images (CIFAR): 64 tokens of width 192
    "ViT_tiny_patch4_32": dict(img_size=32, patch_size=4, embed_dim=192, depth=9, num_heads=3,
                               mlp_ratio=2, **_PAPER),
}

# The constructor arguments that regularise or initialise a ViT without changing its architecture
# or its weights' shapes: a run may change them and still resume, and the config sets each under
# `model.` (ModelConfig has one field per name).
REGULARISATION_ARGS = ("drop_rate", "attn_drop_rate", "drop_path_rate", "zero_head")

# Convolutional baselines for the data-scaling experiment (baselines.py), not ViTs: they are
# built by `create_model` but not listed by `list_models`.
BASELINES: Dict[str, dict] = {
    "ResNet20": dict(depth=20, img_size=32),  # He et al. 2016's CIFAR ResNet, 0.27 M parameters
    "ResNet20x2": dict(depth=20, img_size=32, width=2),  # twice the channels, 1.09 M
}

_CONSTRUCTOR_ARGS = {cls: list(inspect.signature(cls).parameters)
                     for cls in (VisionTransformer, SmallImageResNet)}


def list_models(pattern: str = "") -> List[str]:
    """Return the registered ViT names, sorted, that contain `pattern` (case-insensitive)."""
    return sorted(name for name in VARIANTS if pattern.lower() in name.lower())


def is_vit(name: str) -> bool:
    """Whether `name` is a registered Vision Transformer (not a CNN baseline)."""
    return name in VARIANTS


def model_args(name: str, **overrides) -> dict:
    """Return the constructor arguments of model `name` with `overrides` applied.

    Raises:
        ModelError: for an unknown name or an argument the model's class does not take.
    """
    if name not in VARIANTS and name not in BASELINES:
        known = list(VARIANTS) + list(BASELINES)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        hint = (f"did you mean {', '.join(close)}?" if close else
                f"known models: {', '.join(list_models())}, and the baselines "
                f"{', '.join(BASELINES)}")
        raise ModelError(f"unknown model '{name}'", hint)
    valid = _CONSTRUCTOR_ARGS[_model_class(name)]
    unknown = [key for key in overrides if key not in valid]
    if unknown:
        close = difflib.get_close_matches(unknown[0], valid, n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"valid: {', '.join(valid)}"
        raise ModelError(f"'{unknown[0]}' is not an argument of {name}", hint)
    return {**(VARIANTS.get(name) or BASELINES[name]), **overrides}


def architecture_differences(ours: dict, theirs: dict,
                             ignore: Sequence[str] = ()) -> List[Tuple[str, object, object]]:
    """(argument, ours, theirs) for each constructor argument that two models' arguments set
    differently, leaving out those that only regularise (`REGULARISATION_ARGS`) and `ignore`;
    an empty list means the same architecture. An argument one side does not record counts
    as None; a tuple equals the list of its items (JSON and YAML keep lists)."""
    def plain(value):
        return list(value) if isinstance(value, tuple) else value

    return [(key, ours.get(key), theirs.get(key)) for key in sorted(set(ours) | set(theirs))
            if key not in REGULARISATION_ARGS and key not in ignore
            and plain(ours.get(key)) != plain(theirs.get(key))]


def _model_class(name: str):
    return VisionTransformer if name in VARIANTS else SmallImageResNet


def build_model(name: str, **overrides):
    """Build the registered model `name`, initialised as the paper does (`create_model` is the
    public entry, which also loads published weights).

    Args:
        name: a name from `list_models()` (or a baseline such as "ResNet20").
        **overrides: constructor arguments that replace the registered ones, e.g.
            `num_classes=10` or `drop_path_rate=0.1`.

    Raises:
        ModelError: for an unknown name (listing close matches) or an unknown argument.
    """
    return _model_class(name)(**model_args(name, **overrides))


def build_recorded_model(name: str, args: dict):
    """Rebuild a checkpoint's model from its recorded name and complete arguments, even when
    the registry's row for that name has changed since (the arguments win)."""
    if name in BASELINES:
        return SmallImageResNet(**args)
    args = dict(args)
    if isinstance(args.get("img_size"), list):
        args["img_size"] = tuple(args["img_size"])
    return VisionTransformer(**{**args, "zero_head": False})
