"""vit's fused CPU kernels, behind one boundary: what makes eager training and inference on a
CPU fast, kept out of the model files a learner reads.

Paddle's own CPU kernels for attention, linear layers, layer norm, GELU and stochastic depth
run several passes or operations, or one thread, where PyTorch runs one fused, threaded kernel;
they were most of the gap to PyTorch (docs/performance.md). The model (vit/models) meets this
package in two ways only: the drop-in layers `Linear`, `LayerNorm` and `GELU`, and one call per
layer below (`patch_embedding`, `attention`, `drop_path`), each of which returns None where the
kernels cannot take its input, so that the layer computes its own equation.

    build.py         compiling cpu_kernels.cc once per machine, loading it
    ops.py           the kernels as Paddle operators, and when each may run
    fallback.py      gradients from Paddle's operators, where the library is not built
    drop_in.py       the drop-in layers
"""

from typing import Optional

import paddle

from . import ops
from .build import available, kernels_home
from .drop_in import GELU, LayerNorm, Linear

__all__ = ["GELU", "LayerNorm", "Linear", "attention", "available", "drop_path",
           "kernels_home", "patch_embedding"]


def patch_embedding(x, proj) -> Optional[paddle.Tensor]:
    """The patch embedding's convolution `proj` (kernel = stride = P) of images x [B, C, H, W]
    as the product it is, [B, N, D]: the patches flattened to [B, N, C P P], times the weight
    as a [C P P, D] matrix, in the fused linear kernel. Paddle's CPU convolution makes one
    small product per image: 0.62 ms for the default model's batch of 64 (0.12 ms this way),
    1.39 ms with its gradient (0.22 ms). None where the kernel cannot take x, or a hook
    watches `proj` (the summary table, the FLOP count), which must then run."""
    if not ops.mkl_usable(x) or proj.bias is None or ops.hooked(proj):
        return None
    weight = proj.weight  # [D, C, P, P]
    batch, channels, height, width = x.shape
    patch_height, patch_width = weight.shape[2:]
    rows, columns = height // patch_height, width // patch_width
    patches = x.reshape([batch, channels, rows, patch_height, columns, patch_width])
    patches = patches.transpose([0, 2, 4, 1, 3, 5]).reshape(
        [batch, rows * columns, channels * patch_height * patch_width])
    return ops.linear(patches, weight.reshape([weight.shape[0], -1]).t(), proj.bias)


def attention(qkv, heads: int, scale: float, attn_drop) -> Optional[paddle.Tensor]:
    """Eq. 2's heads from the fused projection qkv [B, N, 3D] to [B, N, D] in one kernel: each
    head's two matrix products and softmax run on one core, a block of queries at a time, with
    no transposes around them. None where the kernel cannot take qkv, or where something needs
    the attention weights as a tensor, which the kernel never makes: dropout on them
    (`attn_drop` in training), or a hook on `attn_drop` (the attention maps, the summary
    table, the FLOP count)."""
    if not ops.mkl_usable(qkv) or ops.hooked(attn_drop) or (attn_drop.training and
                                                            attn_drop.p > 0):
        return None
    return ops.attention(qkv, heads, scale, with_gradient=ops.gradient_wanted(qkv))


def drop_path(x, uniform, keep_prob: float) -> Optional[paddle.Tensor]:
    """Stochastic depth's x * floor(keep_prob + uniform) / keep_prob per sample, the mask and
    the product in one kernel with one gradient; None where the kernel cannot take x."""
    if not ops.usable(x):
        return None
    return ops.drop_path(x, uniform, keep_prob)
