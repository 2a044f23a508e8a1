"""What a ViT attends to: recording the attention maps, attention rollout, and the mean attention
distance of each head (Dosovitskiy et al. 2021, Figures 6 and 7 right).

`record_attention(model)` records each block's post-softmax attention without changing the
model: a forward post-hook on every `attn.attn_drop` reads its input, which is the softmax
(docs/contract.md), and the hooks are removed when the block ends. Maps are [B, H, N, N]
(batch, heads, query tokens, key tokens), the class token first. The functions below work on
NumPy arrays of maps stacked as [L, B, H, N, N] (L layers).
"""

import contextlib
from typing import Iterator, List, Sequence, Tuple

import numpy as np

from ..errors import ModelError

# how rollout combines a layer's heads: the one list (`fuse_heads`, the command line's choices)
HEAD_FUSIONS = ("mean", "max", "min")


class AttentionRecorder:
    """The maps recorded so far: one [B, H, N, N] array per block and forward pass."""

    def __init__(self, depth: int):
        self.depth = depth
        self.maps: List[np.ndarray] = []

    def stacked(self) -> np.ndarray:
        """The last forward pass's maps as [L, B, H, N, N]."""
        if len(self.maps) < self.depth:
            raise ModelError("no attention was recorded", "run the model inside the "
                             "record_attention block")
        return np.stack(self.maps[-self.depth:])


@contextlib.contextmanager
def record_attention(model) -> Iterator[AttentionRecorder]:
    """Record every block's attention while the block runs; the model is left as it was.

    Args:
        model: a VisionTransformer (anything with `blocks[i].attn.attn_drop`).

    Raises:
        ModelError: the model has no attention blocks (a CNN baseline, say).
    """
    blocks = getattr(model, "blocks", None)
    if not blocks or not all(hasattr(getattr(b, "attn", None), "attn_drop") for b in blocks):
        raise ModelError(f"{type(model).__name__} has no attention blocks to record",
                         "give a Vision Transformer")
    recorder = AttentionRecorder(len(blocks))

    def hook(layer, inputs, output):
        recorder.maps.append(inputs[0].detach().numpy())

    handles = [block.attn.attn_drop.register_forward_post_hook(hook) for block in blocks]
    try:
        yield recorder
    finally:
        for handle in handles:
            handle.remove()


def fuse_heads(maps: np.ndarray, head_fusion: str = "mean") -> np.ndarray:
    """[L, B, H, N, N] -> [L, B, N, N] by the mean, max or min over heads."""
    if head_fusion not in HEAD_FUSIONS:
        raise ModelError(f"unknown head fusion '{head_fusion}'", f"use {', '.join(HEAD_FUSIONS)}")
    return getattr(maps, head_fusion)(axis=2)


def attention_rollout(maps: np.ndarray, head_fusion: str = "mean",
                      discard_ratio: float = 0.0) -> np.ndarray:
    """Attention rollout (Abnar & Zuidema 2020), the paper's Figure 6: how much each token's
    final representation draws on each input token, through every layer.

    Per layer the heads are fused, the weakest `discard_ratio` of each row's attention to
    non-class tokens is set to zero (a sharper map), the identity is added for the residual
    connection, and the rows are renormalised to sum to 1; the layers' matrices are then
    multiplied, first layer rightmost.

    Args:
        maps: [L, B, H, N, N] post-softmax attention.
        head_fusion: mean, max or min over heads.
        discard_ratio: share in [0, 1) of the smallest weights dropped per row.

    Returns:
        [B, N, N]: row i is how token i at the output mixes the input tokens.
    """
    if not 0 <= discard_ratio < 1:
        raise ModelError(f"discard ratio must be in [0, 1), got {discard_ratio}")
    fused = fuse_heads(np.asarray(maps, dtype=np.float64), head_fusion)  # [L, B, N, N]
    tokens = fused.shape[-1]
    rollout = np.broadcast_to(np.eye(tokens), fused.shape[1:]).copy()
    for layer in fused:
        if discard_ratio > 0:
            layer = _discard_weakest(layer, discard_ratio)
        joint = layer + np.eye(tokens)
        joint /= joint.sum(axis=-1, keepdims=True)  # rows, keeping the dimension
        rollout = joint @ rollout
    return rollout


def _discard_weakest(layer: np.ndarray, ratio: float) -> np.ndarray:
    """Zero the smallest `ratio` of each row's weights on patch tokens (the class-token
    column is kept, so no row loses all its mass)."""
    layer = layer.copy()
    patches = layer[..., 1:]
    count = int(patches.shape[-1] * ratio)
    if count:
        weakest = np.argsort(patches, axis=-1)[..., :count]
        np.put_along_axis(patches, weakest, 0.0, axis=-1)
        layer[..., 1:] = patches
    return layer


def class_token_map(rollout_or_maps: np.ndarray, grid: Tuple[int, int]) -> np.ndarray:
    """The class token's row over the patches, as images: [..., N, N] -> [..., rows, columns],
    scaled so each map's maximum is 1."""
    row = rollout_or_maps[..., 0, 1:]
    if row.shape[-1] != grid[0] * grid[1]:
        raise ModelError(f"{row.shape[-1]} patch tokens do not form a {grid[0]}x{grid[1]} grid",
                         "pass the model's grid_size")
    images = row.reshape(*row.shape[:-1], grid[0], grid[1])
    peak = images.max(axis=(-2, -1), keepdims=True)
    return images / np.where(peak > 0, peak, 1.0)


def patch_centers(grid: Tuple[int, int], patch: Tuple[int, int]) -> np.ndarray:
    """Pixel coordinates (y, x) of each patch's centre, row by row: [rows x columns, 2]."""
    rows, columns = np.mgrid[0:grid[0], 0:grid[1]]
    return np.stack([(rows.ravel() + 0.5) * patch[0], (columns.ravel() + 0.5) * patch[1]], 1)


def mean_attention_distance(maps: np.ndarray, grid: Tuple[int, int],
                            patch: Sequence[int]) -> np.ndarray:
    """Mean attention distance per layer and head in pixels (the paper's Figure 7 right; the
    "receptive field size" of the head).

    For each query patch, the distance to every key patch weighted by the attention between
    them (renormalised over the patches, the class token's share left out), averaged over the
    query patches and the batch.

    Args:
        maps: [L, B, H, N, N] with the class token first.
        grid: the patch grid (rows, columns).
        patch: patch size (height, width) in pixels.

    Returns:
        [L, H] distances in pixels.
    """
    maps = np.asarray(maps, dtype=np.float64)
    patches = maps[..., 1:, 1:]  # patch queries attending to patch keys
    if patches.shape[-1] != grid[0] * grid[1]:
        raise ModelError(f"{patches.shape[-1]} patch tokens do not form a {grid[0]}x{grid[1]} "
                         "grid", "pass the model's grid_size")
    weights = patches / np.clip(patches.sum(axis=-1, keepdims=True), 1e-12, None)
    centers = patch_centers(grid, tuple(patch))
    distances = np.sqrt(((centers[:, None] - centers[None]) ** 2).sum(-1))  # [G, G]
    per_query = (weights * distances).sum(axis=-1)  # [L, B, H, G]
    return per_query.mean(axis=(1, 3))
