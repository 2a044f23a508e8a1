"""Loading pretrained weights into a model, adapting only what the paper adapts.

`load_pretrained(model, path)` reads any supported format (convert.py), then:
- resamples the position embeddings in 2-D when the patch grid differs (the paper's fine-tuning
  at higher resolution, Sec. 3.2), keeping the class token apart; bicubic with antialiasing, the
  same numbers as timm's `resample_abs_pos_embed`;
- sums the patch kernel over the colour channels for a one-channel model;
- resizes the patch kernel when the patch size differs;
- drops the pre-logits layer of ImageNet-21k checkpoints when the model has none (the paper's
  fine-tuning), saying so;
- re-initialises the head (zeros, as the paper) when the number of classes differs, saying so.
`adapt_state` only adapts. Anything else that does not fit (missing or unexpected keys, other
shapes) is refused by `load_state_dict_strict`, with a table of what differs: Paddle's own
`set_state_dict` would only warn and train into NaN. Every place that puts weights into a model
uses it (pretrained weights, inference, export, resume, the best checkpoint, EMA).
"""

import logging
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import paddle

from ..errors import CheckpointError
from .convert import State, convert_layout, read_weights

log = logging.getLogger(__name__)


def _cubic(x: np.ndarray, a: float = -0.5) -> np.ndarray:
    """Keys' cubic kernel; a = -0.5 is the one Pillow and PyTorch's antialiased resize use."""
    x = np.abs(x)
    return np.where(x < 1, ((a + 2) * x - (a + 3)) * x * x + 1,
                    np.where(x < 2, (((x - 5) * x + 8) * x - 4) * a, 0.0))


def _resize_matrix(old: int, new: int) -> np.ndarray:
    """[new, old] weights of bicubic resampling with antialiasing (PIL's scheme): when shrinking,
    the kernel widens by the scale so every input contributes."""
    scale = old / new
    support = 2.0 * max(scale, 1.0)
    matrix = np.zeros((new, old))
    for i in range(new):
        center = (i + 0.5) * scale
        lo, hi = max(int(center - support + 0.5), 0), min(int(center + support + 0.5), old)
        taps = np.arange(lo, hi)
        weights = _cubic((taps - center + 0.5) / max(scale, 1.0))
        matrix[i, lo:hi] = weights / weights.sum()
    return matrix


def resize_grid(values: np.ndarray, new_size: Tuple[int, int]) -> np.ndarray:
    """Resize [H, W, ...] values to `new_size` separably (bicubic, antialiased)."""
    rows = _resize_matrix(values.shape[0], new_size[0])
    cols = _resize_matrix(values.shape[1], new_size[1])
    out = np.tensordot(rows, values.astype(np.float64), axes=(1, 0))  # [h, W, ...]
    out = np.tensordot(cols, out, axes=(1, 1))  # [w, h, ...]
    return np.swapaxes(out, 0, 1)


def resample_pos_embed(pos_embed: np.ndarray, new_grid: Tuple[int, int],
                       old_grid: Optional[Tuple[int, int]] = None,
                       num_prefix_tokens: int = 1) -> np.ndarray:
    """Resample [1, prefix + H*W, D] position embeddings to a new patch grid in 2-D.

    The class token's embedding is kept as it is; the grid is resized bicubically, as the
    paper does to fine-tune at a higher resolution.
    """
    prefix, grid = pos_embed[:, :num_prefix_tokens], pos_embed[:, num_prefix_tokens:]
    if old_grid is None:
        side = int(round(grid.shape[1] ** 0.5))
        if side * side != grid.shape[1]:
            raise CheckpointError(f"{grid.shape[1]} position embeddings do not form a square "
                                  "grid", "pass the old grid size")
        old_grid = (side, side)
    dim = grid.shape[-1]
    resized = resize_grid(grid.reshape(old_grid[0], old_grid[1], dim), new_grid)
    resized = resized.reshape(1, new_grid[0] * new_grid[1], dim).astype(pos_embed.dtype)
    return np.concatenate([prefix, resized], axis=1)


def resize_patch_kernel(kernel: np.ndarray, new_patch: Tuple[int, int]) -> np.ndarray:
    """Resize a [D, C, P, P] patch kernel to another patch size.

    The kernel is resampled like an image and rescaled by the area ratio, so a patch of constant
    colour keeps its embedding; an approximation (exact only for smooth kernels).
    """
    old = kernel.shape[2:]
    moved = np.moveaxis(kernel, (2, 3), (0, 1))  # [P, P, D, C]
    resized = resize_grid(moved, new_patch) * (old[0] * old[1]) / (new_patch[0] * new_patch[1])
    return np.moveaxis(resized, (0, 1), (2, 3)).astype(kernel.dtype)


def adapt_state(state: State, model) -> Tuple[State, List[str]]:
    """Fit converted weights to `model` in the ways the paper does; return (state, notes).

    Only adapts: whatever still does not fit is left as it is, for `load_state_dict_strict`
    to refuse with its table.
    """
    state = dict(state)
    own = {k: list(v.shape) for k, v in model.state_dict().items()}
    notes = _resample_position_embeddings(state, own, model)
    notes += _fit_patch_kernel(state, own)
    dropped = _drop_pre_logits(state, own)
    notes += dropped
    if dropped or _head_differs(state, own):
        notes += _reset_head(state, own)
    return state, notes


def _resample_position_embeddings(state: State, own: Dict[str, list], model) -> List[str]:
    """To the model's patch grid (the paper's fine-tuning at a higher resolution); a model
    without position embeddings (a CNN) has no grid to ask for."""
    if "pos_embed" not in state or "pos_embed" not in own or \
            list(state["pos_embed"].shape) == own["pos_embed"]:
        return []
    old_tokens = state["pos_embed"].shape[1]
    state["pos_embed"] = resample_pos_embed(state["pos_embed"], model.grid_size)
    return [f"position embeddings resampled from {old_tokens - 1} to {own['pos_embed'][1] - 1} "
            "patches (2-D bicubic)"]


def _fit_patch_kernel(state: State, own: Dict[str, list]) -> List[str]:
    """To the model's patch size, and summed over colour for one-channel input."""
    kernel, key = state.get("patch_embed.proj.weight"), "patch_embed.proj.weight"
    if kernel is None or key not in own or list(kernel.shape) == own[key]:
        return []
    want, notes = own[key], []
    if kernel.shape[2:] != tuple(want[2:]):
        notes.append(f"patch kernel resized from {kernel.shape[2]} to {want[2]} pixels")
        kernel = resize_patch_kernel(kernel, tuple(want[2:]))
    if kernel.shape[1] != want[1] and want[1] == 1:
        kernel = kernel.sum(axis=1, keepdims=True)
        notes.append("patch kernel summed over the colour channels for one-channel input")
    state[key] = kernel
    return notes


def _drop_pre_logits(state: State, own: Dict[str, list]) -> List[str]:
    """ImageNet-21k checkpoints carry the representation layer; fine-tuning drops it and the
    head that read its output (Sec. 3.1)."""
    if "pre_logits.fc.weight" not in state or "pre_logits.fc.weight" in own:
        return []
    width = state.pop("pre_logits.fc.weight").shape[1]
    state.pop("pre_logits.fc.bias", None)
    return [f"pre-logits layer ({width} wide) dropped: the model has none, as in the paper's "
            "fine-tuning"]


def _reset_head(state: State, own: Dict[str, list]) -> List[str]:
    """The model's classifier, zeros (as the paper), in place of the weights' one."""
    for key in HEAD_KEYS:
        state.pop(key, None)
        if key in own:
            state[key] = np.zeros(own[key], dtype=np.float32)
    classes = own["head.weight"][1] if "head.weight" in own else 0
    return [f"head re-initialised to zeros for {classes} classes"]


HEAD_KEYS = ("head.weight", "head.bias")


def _head_differs(state: State, own: Dict[str, list]) -> bool:
    """Whether the weights' classifier is not the model's: one of them has none (a headless
    backbone, or `num_classes=0`), or it maps to another number of classes."""
    if ("head.weight" in own) != ("head.weight" in state):
        return True
    return any(key in own and key in state and list(state[key].shape) != own[key]
               for key in HEAD_KEYS)


def state_differences(state: State, own: Dict[str, list]) -> List[Tuple[str, str, str]]:
    """Rows (key, shape in `state`, shape in the model) for every key that does not fit."""
    rows = []
    for key in sorted(set(state) | set(own)):
        theirs = list(np.shape(state[key])) if key in state else None
        ours = own.get(key)
        if theirs != ours:
            rows.append((key, "missing" if theirs is None else str(theirs),
                         "absent" if ours is None else str(ours)))
    return rows


def format_table(rows: Sequence[Tuple[str, str, str]], header: Tuple[str, str, str],
                 limit: int = 20) -> str:
    """Three aligned columns, indented, at most `limit` rows (the rest counted)."""
    shown = [header, *rows[:limit]]
    widths = [max(len(str(row[i])) for row in shown) for i in range(2)]
    lines = [f"  {a:<{widths[0]}}  {b:<{widths[1]}}  {c}" for a, b, c in shown]
    if len(rows) > limit:
        lines.append(f"  ... and {len(rows) - limit} more")
    return "\n".join(lines)


def check_state_fits(state: State, own: Dict[str, list], source, hint: str = ""):
    """Refuse `state` unless it has exactly the keys and shapes of `own` (key -> shape).

    Raises:
        CheckpointError: naming `source`, with a table of what differs as details.
    """
    problems = state_differences(state, own)
    if problems:
        raise CheckpointError(f"{source} does not fit the model: {len(problems)} tensors are "
                              "missing, unexpected or of another shape",
                              hint or "load weights made for this model",
                              details=format_table(problems, ("key", "in the weights",
                                                              "in the model")))


def load_state_dict_strict(model, state: State, source, hint: str = "") -> None:
    """Put `state` (arrays or tensors) into `model`, refusing any missing or unexpected key and
    any shape that differs, with a table of them (Paddle's `set_state_dict` only warns)."""
    check_state_fits(state, {k: list(v.shape) for k, v in model.state_dict().items()}, source,
                     hint)
    model.set_state_dict({key: value if isinstance(value, paddle.Tensor)
                          else paddle.to_tensor(np.asarray(value)) for key, value in state.items()})


def load_pretrained(model, path, fmt: Optional[str] = None) -> List[str]:
    """Load weights from `path` (any supported format) into `model`, adapting as the paper
    does; return what was adapted, each a sentence that is also logged."""
    state, meta = read_weights(path)
    converted, _ = convert_layout(state, fmt, meta)
    return load_converted(model, converted, path)


def load_converted(model, converted: State, source) -> List[str]:
    """Put weights already in our layout into `model`: adapt (`adapt_state`), then the one
    strict refusal; log and return the notes."""
    adapted, notes = adapt_state(converted, model)
    load_state_dict_strict(model, adapted, source, "choose the model these weights were made "
                           "for (tools/convert.py reads other layouts)")
    log.info("loaded pretrained weights from %s", source)
    for note in notes:
        log.info("  %s", note)
    return notes
