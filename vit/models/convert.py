"""Reading published ViT weights and renaming them into this project's (PaddleClas's) layout.

Formats, each recognised from its key names:
- `paddle`: PaddleClas `.pdparams` or our own checkpoints: the names already match.
- `timm`: timm ViT state dicts (`.pth`, `.bin`, `.safetensors`): the same names, but PyTorch
  stores Linear weights as [out, in] where Paddle stores [in, out].
- `hf`: Hugging Face `ViTModel` / `ViTForImageClassification`, with transformers-4 names
  (`vit.encoder.layer.N.attention.attention.query.weight`, what the Hub's files hold) or
  transformers-5 names (`vit.layers.N.attention.q_proj.weight`, `mlp.fc1`).
- `jax`: the original Google / big_vision `.npz` (`Transformer/encoderblock_N/...`), including
  `pre_logits` when present.
Every converter returns NumPy arrays in Paddle's layout plus the model arguments the shapes imply.
`.safetensors` and `.npz` are read without torch; `.pth`/`.bin` need torch and are read with
`weights_only=True`, so they cannot run code either.
"""

import json
import re
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np

from ..errors import CheckpointError
from ..serialization import load_safetensors, safe_load
from .variants import VARIANTS

State = Dict[str, np.ndarray]


# --- reading files -----------------------------------------------------------------------------
def read_weights(path) -> Tuple[State, dict]:
    """Read a weights file or a Hugging Face folder: (name -> array, metadata or HF config)."""
    path = Path(path)
    if path.is_dir():
        return _read_hf_folder(path)
    if not path.is_file():
        raise CheckpointError(f"weights '{path}' do not exist", "check the path")
    suffix = path.suffix.lower()
    if suffix == ".safetensors":
        return load_safetensors(path)
    if suffix in (".pdparams", ".pdopt"):
        state = safe_load(path)
        state.pop("StructuredToParameterName@@", None)
        return {k: np.asarray(v) for k, v in state.items()}, {}
    if suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as archive:
                return {key: archive[key] for key in archive.files}, {}
        except (ValueError, OSError) as error:
            raise CheckpointError(f"cannot read {path} as .npz ({error})",
                                  "the file is damaged or not a NumPy archive") from None
    if suffix in (".pth", ".pt", ".bin"):
        return _read_torch(path), {}
    raise CheckpointError(f"unknown weights format '{suffix}' for {path}",
                          "give .pdparams, .safetensors, .pth/.bin, .npz or a Hugging Face folder")


def _read_torch(path: Path) -> State:
    try:
        import torch
    except ImportError:
        raise CheckpointError(f"{path} is a PyTorch file and reading it needs torch",
                              "pip install torch (CPU is enough), or convert the file to "
                              ".safetensors elsewhere") from None
    try:
        data = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as error:  # torch refuses pickles that name code, and damaged files
        raise CheckpointError(f"cannot read {path} safely ({type(error).__name__}: "
                              f"{str(error).splitlines()[0][:200]})",
                              "only plain tensor state dicts are accepted") from None
    for key in ("state_dict", "model", "module"):  # training checkpoints wrap the weights
        if isinstance(data, dict) and isinstance(data.get(key), dict):
            data = data[key]
    return {k: v.detach().cpu().float().numpy() if v.is_floating_point() else v.cpu().numpy()
            for k, v in data.items() if hasattr(v, "detach")}


def _read_hf_folder(folder: Path) -> Tuple[State, dict]:
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise CheckpointError(f"{folder} has no config.json", "give a Hugging Face model folder "
                              "(config.json + model.safetensors or pytorch_model.bin)")
    config = json.loads(config_path.read_text(encoding="utf-8"))
    for name in ("model.safetensors", "pytorch_model.bin"):
        if (folder / name).is_file():
            state, _ = read_weights(folder / name)
            return state, {"hf_config": config}
    raise CheckpointError(f"{folder} has no model.safetensors or pytorch_model.bin",
                          "download the weights file too")


# --- recognising the format ----------------------------------------------------------------------
def detect_format(state: State) -> str:
    keys = set(state)
    if any(k.startswith("Transformer/") for k in keys):
        return "jax"
    if any(re.match(r"(vit\.)?(encoder\.layer|layers)\.\d+\.", k) for k in keys) or \
            any(k.endswith("embeddings.position_embeddings") for k in keys):
        return "hf"
    if "blocks.0.attn.qkv.weight" in keys:
        qkv = state["blocks.0.attn.qkv.weight"]
        # Paddle stores [D, 3D]; PyTorch (timm) stores [3D, D]
        return "paddle" if qkv.shape[1] == 3 * qkv.shape[0] else "timm"
    if "head.weight" in keys and any(k.startswith("stages.") for k in keys):
        return "paddle"  # this project's own checkpoint of the CNN baseline
    raise CheckpointError("the weights are not a ViT in a known layout (PaddleClas, timm, "
                          "Hugging Face or Google .npz)", "name their layout when converting "
                          f"them ({', '.join(FORMATS)}), or check the file")


# --- converters -------------------------------------------------------------------------------
def convert_state(state: State, fmt: Optional[str] = None, meta: Optional[dict] = None,
                  num_heads: Optional[int] = None) -> Tuple[State, dict]:
    """Rename and reshape `state` into this project's layout, and say what model it is.

    Returns:
        (state, model arguments implied by it: img_size, patch_size, in_chans, num_classes,
        embed_dim, depth, num_heads, mlp_ratio, qkv_bias, qk_scale, epsilon,
        representation_size, and class_names where the source names its classes)
    """
    converted, facts = convert_layout(state, fmt, meta)
    args = infer_model_args(converted, num_heads=facts.get("num_heads", num_heads),
                            epsilon=facts.get("epsilon"))
    args.update({k: v for k, v in facts.items() if k not in ("num_heads", "epsilon")})
    return converted, args


def convert_layout(state: State, fmt: Optional[str] = None,
                   meta: Optional[dict] = None) -> Tuple[State, dict]:
    """Rename and reshape `state` into this project's layout (float32, contiguous).

    Returns:
        (state, what the source itself states: `num_heads`, `epsilon`, `class_names`, where
        it does)
    """
    fmt = fmt or detect_format(state)
    if fmt not in _CONVERTERS:
        raise CheckpointError(f"unknown source format '{fmt}'", f"use {', '.join(FORMATS)}")
    converted, extra = _CONVERTERS[fmt](state, meta or {})
    return {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in converted.items()}, extra


def _from_timm(state: State, meta: dict) -> Tuple[State, dict]:
    out = {}
    for key, value in state.items():
        if key in ("fc_norm.weight", "fc_norm.bias") or key.endswith(("ls1.gamma", "ls2.gamma")):
            raise CheckpointError(f"timm key '{key}' belongs to a ViT variant this model does "
                                  "not have (global pooling or LayerScale)",
                                  "convert a classic ViT (class token, no LayerScale)")
        out[key] = value.T if value.ndim == 2 and key != "pos_embed" else value
    return out, {}


_HF_RULES = [  # (pattern of transformers-4 or -5 names, our name)
    (r"embeddings\.cls_token", "cls_token"),
    (r"embeddings\.position_embeddings", "pos_embed"),
    (r"embeddings\.patch_embeddings\.projection\.(weight|bias)", r"patch_embed.proj.\1"),
    (r"(?:encoder\.layer|layers)\.(\d+)\.layernorm_before\.(weight|bias)", r"blocks.\1.norm1.\2"),
    (r"(?:encoder\.layer|layers)\.(\d+)\.layernorm_after\.(weight|bias)", r"blocks.\1.norm2.\2"),
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)", r"blocks.\1.attn.proj.\2"),
    (r"layers\.(\d+)\.attention\.o_proj\.(weight|bias)", r"blocks.\1.attn.proj.\2"),
    (r"encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)", r"blocks.\1.mlp.fc1.\2"),
    (r"encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)", r"blocks.\1.mlp.fc2.\2"),
    (r"layers\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)", r"blocks.\1.mlp.\2.\3"),
    (r"layernorm\.(weight|bias)", r"norm.\1"),
    (r"pooler\.dense\.(weight|bias)", r"pre_logits.fc.\1"),
    (r"classifier\.(weight|bias)", r"head.\1"),
]
_HF_QKV = re.compile(r"(?:encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)"
                     r"|layers\.(\d+)\.attention\.(q|k|v)_proj)\.(weight|bias)")


def _from_hf(state: State, meta: dict) -> Tuple[State, dict]:
    config = meta.get("hf_config", {})
    out, qkv = {}, {}
    for key, value in state.items():
        name = key[4:] if key.startswith("vit.") else key
        match = _HF_QKV.fullmatch(name)
        if match:
            block = match.group(1) or match.group(3)
            part = (match.group(2) or match.group(4))[0]  # q, k or v
            qkv.setdefault((block, match.group(5)), {})[part] = value
            continue
        for pattern, replacement in _HF_RULES:
            if re.fullmatch(pattern, name):
                ours = re.sub(pattern, replacement, name)
                break
        else:
            raise CheckpointError(f"Hugging Face key '{key}' has no counterpart in this ViT",
                                  "convert a ViTModel or ViTForImageClassification")
        out[ours] = value.T if value.ndim == 2 else value
    for (block, kind), parts in qkv.items():
        fused = np.concatenate([parts["q"], parts["k"], parts["v"]], axis=0)
        out[f"blocks.{block}.attn.qkv.{kind}"] = fused.T if kind == "weight" else fused
    extra = {}
    if config:
        extra = {"num_heads": config.get("num_attention_heads"),
                 "epsilon": float(config.get("layer_norm_eps", 1e-12))}
        if config.get("hidden_act", "gelu") != "gelu":
            raise CheckpointError(f"the model uses activation '{config['hidden_act']}'",
                                  "only the exact GELU of ViT is supported")
        labels = config.get("id2label")
        if labels and "head.weight" in out:
            extra["class_names"] = [labels[str(i)] for i in range(len(labels))]
    return out, extra


def _from_jax(state: State, meta: dict) -> Tuple[State, dict]:
    out = {"cls_token": state["cls"],
           "pos_embed": state["Transformer/posembed_input/pos_embedding"],
           # HWIO -> OIHW
           "patch_embed.proj.weight": state["embedding/kernel"].transpose(3, 2, 0, 1),
           "patch_embed.proj.bias": state["embedding/bias"],
           "norm.weight": state["Transformer/encoder_norm/scale"],
           "norm.bias": state["Transformer/encoder_norm/bias"]}
    depth = len({k.split("/")[1] for k in state if k.startswith("Transformer/encoderblock_")})
    heads = None
    for i in range(depth):
        p = f"Transformer/encoderblock_{i}/"
        attn = p + "MultiHeadDotProductAttention_1/"
        q, k, v = (state[attn + f"{n}/kernel"] for n in ("query", "key", "value"))  # [D, H, d]
        heads = q.shape[1]
        dim = q.shape[0]
        out[f"blocks.{i}.attn.qkv.weight"] = np.concatenate(
            [t.reshape(dim, -1) for t in (q, k, v)], axis=1)  # [D, 3D], Paddle's [in, out]
        out[f"blocks.{i}.attn.qkv.bias"] = np.concatenate(
            [state[attn + f"{n}/bias"].reshape(-1) for n in ("query", "key", "value")])
        out[f"blocks.{i}.attn.proj.weight"] = state[attn + "out/kernel"].reshape(-1, dim)
        out[f"blocks.{i}.attn.proj.bias"] = state[attn + "out/bias"]
        for ours, theirs in (("norm1", "LayerNorm_0"), ("norm2", "LayerNorm_2")):
            out[f"blocks.{i}.{ours}.weight"] = state[p + f"{theirs}/scale"]
            out[f"blocks.{i}.{ours}.bias"] = state[p + f"{theirs}/bias"]
        for ours, theirs in (("fc1", "Dense_0"), ("fc2", "Dense_1")):
            out[f"blocks.{i}.mlp.{ours}.weight"] = state[p + f"MlpBlock_3/{theirs}/kernel"]
            out[f"blocks.{i}.mlp.{ours}.bias"] = state[p + f"MlpBlock_3/{theirs}/bias"]
    for ours, theirs in (("pre_logits.fc", "pre_logits"), ("head", "head")):
        if f"{theirs}/kernel" in state:
            out[f"{ours}.weight"] = state[f"{theirs}/kernel"]  # Flax Dense: [in, out] already
            out[f"{ours}.bias"] = state[f"{theirs}/bias"]
    return out, {"num_heads": heads, "epsilon": 1e-6}


# layout -> (state, metadata) -> (state in ours, what the source states); FORMATS: the names
_CONVERTERS = {"timm": _from_timm, "hf": _from_hf, "jax": _from_jax,
               "paddle": lambda state, meta: (dict(state), {})}
FORMATS = tuple(_CONVERTERS)


def infer_model_args(state: State, num_heads: Optional[int] = None,
                     epsilon: Optional[float] = None) -> dict:
    """The constructor arguments that weights in our layout imply.

    Shapes do not show the number of heads, the LayerNorm epsilon or the attention scale: they
    come from the source where it states them (`num_heads`, `epsilon`), else from the registered
    model of the same shapes (PaddleClas's ViT_small: 8 heads, epsilon 1e-5, scale 768^-0.5),
    else from the paper's convention (64 wide per head, epsilon 1e-6).
    """
    try:
        kernel = state["patch_embed.proj.weight"]  # [D, C, P, P]
        dim, channels, patch = kernel.shape[0], kernel.shape[1], kernel.shape[2]
        tokens = state["pos_embed"].shape[1] - 1
    except KeyError as missing:
        raise CheckpointError(f"the weights have no {missing}", "they are not a ViT") from None
    side = int(round(tokens ** 0.5))
    depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    hidden = state["blocks.0.mlp.fc1.weight"].shape[1] if depth else 4 * dim
    representation = state["pre_logits.fc.weight"].shape[1] if "pre_logits.fc.weight" in state else None
    args = {
        "img_size": side * patch if side * side == tokens else None,
        "patch_size": int(patch), "in_chans": int(channels), "embed_dim": int(dim),
        "depth": depth, "mlp_ratio": hidden / dim, "qkv_bias": "blocks.0.attn.qkv.bias" in state,
        "num_classes": int(state["head.weight"].shape[1]) if "head.weight" in state else 0,
        "representation_size": int(representation) if representation else None,
    }
    registered = _registered_like(args)
    args["num_heads"] = int(num_heads or registered.get("num_heads") or _default_heads(dim))
    args["epsilon"] = float(epsilon or registered.get("epsilon", 1e-6))
    same_heads = registered and args["num_heads"] == registered["num_heads"]
    args["qk_scale"] = registered.get("qk_scale") if same_heads else None
    return args


# what the shapes show that makes a model family (input size, channels and classes vary within)
_FAMILY_SHAPE_ARGS = ("patch_size", "embed_dim", "depth", "mlp_ratio", "qkv_bias")


def _registered_like(args: dict) -> dict:
    """The first registered ViT whose weights have these shapes, or {}. Another question than
    `architecture_differences`: a family looked up by what shapes show, to borrow what they
    cannot (heads, epsilon, attention scale)."""
    for variant in VARIANTS.values():
        if all(variant.get(key) == args[key] for key in _FAMILY_SHAPE_ARGS):
            return variant
    return {}


def _default_heads(dim: int) -> int:
    """Heads of the published ViTs by width (64 per head, except ViT-H's 80)."""
    return {1280: 16}.get(dim, max(1, dim // 64))
