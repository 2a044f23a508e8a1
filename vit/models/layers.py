"""The parts of a Vision Transformer, in the order its forward pass meets them.

Dosovitskiy et al. (2021), Sec. 3.1: a patch embedding (Eq. 1), then L blocks of multi-head
self-attention (Eq. 2) and an MLP (Eq. 3), each behind a LayerNorm with a residual around it.
Shapes use B (batch), N (tokens), D (embedding width) and H (heads).

The module tree is the architecture contract: `paddle.summary` prints one row per layer, so the
layers, their names and their order stay exactly as they are. See docs/contract.md before adding,
splitting or renaming any layer here.
"""

from typing import Optional, Tuple

import paddle
import paddle.nn as nn
import paddle.nn.functional as F
from paddle.autograd import PyLayer

from ..errors import ModelError
from . import cpu_kernels


def to_2tuple(value) -> Tuple[int, int]:
    """Return `value` as (height, width); an int means a square."""
    if isinstance(value, int):
        return (value, value)
    height, width = value
    return (int(height), int(width))


def _cpu_gradient_wanted(x) -> bool:
    """Whether a layer's input `x` is headed into an eager CPU backward pass, where `Linear` and
    `LayerNorm` compute their own gradients; on other devices, in static graphs and under
    autocast Paddle's own kernels run."""
    return (paddle.in_dynamic_mode() and paddle.is_grad_enabled() and x.place.is_cpu_place()
            and not paddle.amp.is_autocast_enabled())


def _gradient_wanted(*tensors) -> bool:
    """Whether a backward pass will need a gradient through any of these tensors."""
    return paddle.is_grad_enabled() and any(not tensor.stop_gradient for tensor in tensors)


def _hooked(layer) -> bool:
    """Whether something watches `layer`'s calls with a forward hook (`paddle.summary`, the
    FLOP count, the attention maps), so that the layer must run rather than be computed around."""
    return bool(layer._forward_pre_hooks) or bool(layer._forward_post_hooks)


def _column_sums(matrix):
    """[M, D] -> [1, D], as a product with a row of ones: Paddle's CPU kernels that reduce or
    broadcast are 5-8x slower than its matrix product and same-shape element-wise ones."""
    return paddle.matmul(paddle.ones([1, matrix.shape[0]], matrix.dtype), matrix)


def _learning(*tensors):
    """Which of a PyLayer's inputs get a gradient: its backward must return None, not a
    gradient, for one that does not learn (a frozen layer)."""
    return [not tensor.stop_gradient for tensor in tensors]


class _LinearGradOnCPU(PyLayer):
    """b + x W as one `addmm` whose gradient is three matrix products, where vit's fused
    linear kernel (cpu_kernels.py, with its own gradient) is not built.

    Paddle's `addmm` gradient sums the bias gradient with its reducing kernel; with a product
    with ones (`_column_sums`) the default model's training step is 4-10 % faster on CPU. The
    fused kernel (the bias inside MKL's product, the gradient as one operation) takes it
    another 5 % (20.5-20.7 against 21.6-22.0 ms, one process).
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.learns = _learning(x, weight, bias)
        return paddle.addmm(bias, x, weight)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensor()
        x_learns, weight_learns, bias_learns = ctx.learns
        d_x = paddle.matmul(grad, weight, transpose_y=True) if x_learns else None
        d_weight = paddle.matmul(x, grad, transpose_x=True) if weight_learns else None
        d_bias = _column_sums(grad).reshape([weight.shape[1]]) if bias_learns else None
        return d_x, d_weight, d_bias


class Linear(nn.Linear):
    """`paddle.nn.Linear`, computed as one operation with its gradient as another.

    Eager float32 on the CPU runs vit's fused kernel (cpu_kernels.py: the bias added inside
    MKL's product, not in a second pass), in training and inference. Elsewhere training runs
    one `addmm` (bias + x W): Paddle's own forward runs the product and the bias as two
    kernels, and their gradients as two more, which made small models' training steps 10-20 %
    slower; on a CPU without the kernel its gradient is `_LinearGradOnCPU`'s. The parameters,
    their key names and the summary table's `Linear-N` row are those of `paddle.nn.Linear`
    (docs/contract.md). Exports run Paddle's own forward, which Paddle Inference fuses into one
    oneDNN FC operation.
    """

    def forward(self, x):
        # the kernel test first: `paddle.jit.to_static` (SOT) breaks its graph at
        # `self.bias is None`, and the test is False while it traces
        if cpu_kernels.mkl_usable(x) and self.bias is not None:
            return cpu_kernels.linear(x, self.weight, self.bias)
        if not self.training or self.bias is None:
            return super().forward(x)
        flat = x.reshape([-1, x.shape[-1]])  # [B*N, in]
        if _cpu_gradient_wanted(x):
            out = _LinearGradOnCPU.apply(flat, self.weight, self.bias)
        else:
            out = paddle.addmm(self.bias, flat, self.weight)  # [B*N, out]
        return out.reshape([*x.shape[:-1], out.shape[-1]])


class _LayerNormGradOnCPU(PyLayer):
    """Layer norm with Paddle's forward and a gradient of its own, where vit's fused kernel
    (cpu_kernels.py, with its gradient) is not built: one made of matrix products and
    same-shape element-wise operations, the CPU kernels of Paddle's that are fast.

    Paddle's CPU `layer_norm_grad` took 15-20x its forward (8.0 ms for a [4160, 192] batch,
    its forward 0.1 ms), and so most of a small ViT's backward pass; its broadcasting and
    reducing element-wise kernels are 5-8x slower than same-shape ones. This gradient
    recomputes the normalised input from x, sums rows and columns as products with a vector of
    ones, and broadcasts by `expand`: 2.8 ms for that batch, about 25 operations; the fused
    kernel is one pass over each row. Both give the right input gradient when the weight is
    frozen, where Paddle 3.3.1's CPU kernel computes it as if the weight were 1
    (tests/test_models.py checks both against a float64 layer-norm gradient).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, epsilon):
        ctx.save_for_backward(x, weight)
        ctx.epsilon = epsilon
        ctx.learns = _learning(x, weight, bias)
        return F.layer_norm(x, x.shape[-1:], weight, bias, epsilon)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensor()
        x_learns, weight_learns, bias_learns = ctx.learns
        shape, width = x.shape, x.shape[-1]
        x, grad = x.reshape([-1, width]), grad.reshape([-1, width])  # [M, D]
        full = x.shape
        row_mean = paddle.full([width, 1], 1.0 / width, x.dtype)  # x @ row_mean: [M, 1]
        centred = x - paddle.matmul(x, row_mean).expand(full)
        inv_std = paddle.rsqrt(paddle.matmul(centred * centred, row_mean)
                               + ctx.epsilon).expand(full)
        normed = centred * inv_std
        d_x = d_weight = d_bias = None
        if x_learns:
            scaled = grad * weight.expand(full)
            d_x = ((scaled - paddle.matmul(scaled, row_mean).expand(full)
                    - normed * paddle.matmul(scaled * normed, row_mean).expand(full))
                   * inv_std).reshape(shape)
        if weight_learns:
            d_weight = _column_sums(grad * normed).reshape([width])
        if bias_learns:
            d_bias = _column_sums(grad).reshape([width])
        return d_x, d_weight, d_bias


class LayerNorm(nn.LayerNorm):
    """`paddle.nn.LayerNorm`, whose gradient on CPU is vit's fused kernel (cpu_kernels.py, which
    then computes the forward too) or, where that is not built, `_LayerNormGradOnCPU`'s.

    The parameters, their key names and the summary table's `LayerNorm-N` row are those of
    `paddle.nn.LayerNorm` (docs/contract.md). Inference without a gradient, static graphs and
    other devices run Paddle's own layer norm, as does a norm without weight or bias or over
    more than one axis.
    """

    def __init__(self, normalized_shape, *args, **kwargs):
        super().__init__(normalized_shape, *args, **kwargs)
        self._own_gradient = (self.weight is not None and self.bias is not None
                              and len(self._normalized_shape) == 1)

    def forward(self, x):
        # the kernel test first: `paddle.jit.to_static` (SOT) breaks its graph at
        # `paddle.is_grad_enabled()`, and the test is False while it traces
        if cpu_kernels.usable(x) and self._own_gradient and _cpu_gradient_wanted(x):
            return cpu_kernels.layer_norm(x, self.weight, self.bias, self._epsilon)
        if self._own_gradient and self.training and _cpu_gradient_wanted(x):
            return _LayerNormGradOnCPU.apply(x, self.weight, self.bias, self._epsilon)
        return super().forward(x)


class PatchEmbed(nn.Layer):
    """Cut the image into patches and project each linearly (Eq. 1, the E in x_p E).

    A convolution whose kernel and stride both equal the patch size is exactly "cut into
    non-overlapping P x P patches, flatten, multiply by one matrix", computed in one op.

    Args:
        img_size: the input size the model is built for, int or (height, width).
        patch_size: side of a square patch, in pixels.
        in_chans: channels of the input image.
        embed_dim: width D of each patch token.
    """

    def __init__(self, img_size=224, patch_size=16, in_chans=3, embed_dim=768):
        super().__init__()
        self.img_size = to_2tuple(img_size)
        self.patch_size = to_2tuple(patch_size)
        for side, patch in zip(self.img_size, self.patch_size):
            if side % patch:
                raise ModelError(
                    f"img_size {self.img_size[0]}x{self.img_size[1]} is not divisible by the "
                    f"patch size {self.patch_size[0]}x{self.patch_size[1]}",
                    "choose an image size that is a multiple of the patch size",
                )
        self.grid_size = (self.img_size[0] // self.patch_size[0],
                          self.img_size[1] // self.patch_size[1])
        self.num_patches = self.grid_size[0] * self.grid_size[1]
        self.proj = nn.Conv2D(in_chans, embed_dim, kernel_size=self.patch_size,
                              stride=self.patch_size)

    def forward(self, x):
        """[B, C, H, W] -> [B, N, D] with N = (H / P) * (W / P)."""
        self._check_input_size(x.shape)
        if cpu_kernels.mkl_usable(x) and self.proj.bias is not None and not _hooked(self.proj):
            return self._patches_times_weight(x)
        x = self.proj(x)  # [B, D, H/P, W/P]
        # flatten/transpose are tensor methods, not layers: a Flatten layer would add a row
        # to the summary contract (docs/contract.md).
        return x.flatten(2).transpose((0, 2, 1))  # [B, N, D]

    def _patches_times_weight(self, x):
        """The convolution as the product it is, for eager float32 on the CPU: the patches,
        flattened to [B, N, C P P], times the weight as a [C P P, D] matrix, in vit's fused
        linear kernel. Paddle's CPU convolution makes one small product per image: 0.62 ms
        for the default model's batch of 64 (0.12 ms this way), 1.39 ms with its gradient
        (0.22 ms)."""
        batch, channels, height, width = x.shape
        (patch_height, patch_width), (rows, columns) = self.patch_size, self.grid_size
        patches = x.reshape([batch, channels, rows, patch_height, columns, patch_width])
        patches = patches.transpose([0, 2, 4, 1, 3, 5]).reshape(
            [batch, rows * columns, channels * patch_height * patch_width])
        weight = self.proj.weight  # [D, C, P, P]
        return cpu_kernels.linear(patches, weight.reshape([weight.shape[0], -1]).t(),
                                  self.proj.bias)

    def _check_input_size(self, shape):
        height, width = shape[-2], shape[-1]
        if not (isinstance(height, int) and isinstance(width, int)) or min(height, width) < 0:
            return  # symbolic shapes while exporting a static graph: nothing to check yet
        if (height, width) == self.img_size:
            return
        want = f"{self.img_size[0]}x{self.img_size[1]}"
        got = f"{height}x{width}"
        if height % self.patch_size[0] or width % self.patch_size[1]:
            raise ModelError(
                f"input is {got}, which is not divisible by the patch size "
                f"{self.patch_size[0]}x{self.patch_size[1]}, and the model expects {want}",
                f"resize or crop the images to {want}",
            )
        raise ModelError(
            f"input is {got} but the model was built for {want}",
            f"resize the images to {want}, or build the model with img_size={height if height == width else (height, width)} "
            "and load weights with their position embeddings resampled",
        )


def softmax(scores):
    """Softmax over the last axis (the keys): vit's fused kernel for eager float32 on the CPU
    (cpu_kernels.py; Paddle's CPU softmax runs on one thread and slowly on short rows), Paddle's
    own everywhere else, static graphs and exports included."""
    if not cpu_kernels.usable(scores):
        return F.softmax(scores, axis=-1)
    return cpu_kernels.softmax(scores)


def fused_attention(qkv, heads: int, scale: float):
    """Eq. 2's heads from the fused projection qkv [B, N, 3D] to [B, N, D], in one kernel
    (cpu_kernels.py): each head's two matrix products and softmax run on one core, a block of
    queries at a time, with no transposes around them. For eager float32 on the CPU."""
    return cpu_kernels.attention(qkv, heads, scale, with_gradient=_gradient_wanted(qkv))


class Attention(nn.Layer):
    """Multi-head self-attention (Eq. 2; the paper's Appendix A).

    Args:
        dim: token width D.
        num_heads: number of heads H; each attends in D / H dimensions.
        qkv_bias: give the fused query/key/value projection a bias.
        qk_scale: the factor on q k^T; None means 1 / sqrt(D / H) as in the paper.
        attn_drop: dropout on the attention weights.
        proj_drop: dropout after the output projection.
    """

    def __init__(self, dim, num_heads=8, qkv_bias=False, qk_scale=None, attn_drop=0.0,
                 proj_drop=0.0):
        super().__init__()
        if dim % num_heads:
            raise ModelError(f"embed_dim {dim} is not divisible by num_heads {num_heads}",
                             "choose num_heads that divides embed_dim")
        self.num_heads = num_heads
        head_dim = dim // num_heads
        self.scale = qk_scale or head_dim ** -0.5
        # one fused projection for q, k and v: the contract's Linear D -> 3D
        self.qkv = Linear(dim, dim * 3, bias_attr=None if qkv_bias else False)
        self.attn_drop = nn.Dropout(attn_drop)
        self.proj = Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x):
        """[B, N, D] -> [B, N, D]."""
        qkv = self.qkv(x)  # [B, N, 3D]
        if cpu_kernels.mkl_usable(qkv) and not self._weights_observed():
            return self.proj_drop(self.proj(fused_attention(qkv, self.num_heads, self.scale)))
        num_tokens, dim = x.shape[1], x.shape[2]
        # q, k and v split apart and each cut into heads, rather than one 5-D transpose and
        # unbind: in exports Paddle Inference's oneDNN passes fold each reshape and transpose
        # into the product that reads it (ViT-B/16@384 in bf16 at batch 8: 817-852 ms, against
        # 875-972 ms)
        shape = (-1, num_tokens, self.num_heads, dim // self.num_heads)
        q, k, v = [part.reshape(shape).transpose((0, 2, 1, 3))  # each [B, H, N, D/H]
                   for part in qkv.split(3, axis=-1)]
        # scaling q rather than q k^T (as timm does) touches N x D/H numbers instead of N x N
        attn = (q * self.scale).matmul(k, transpose_y=True)  # [B, H, N, N]
        # a function, not an nn.Softmax layer, which would add a row to the contract
        attn = softmax(attn)
        # attn_drop's input is this softmax: a forward hook on attn_drop sees the attention
        # map without any change to the model (docs/contract.md)
        attn = self.attn_drop(attn)
        x = attn.matmul(v).transpose((0, 2, 1, 3)).reshape((-1, num_tokens, dim))  # [B, N, D]
        return self.proj_drop(self.proj(x))

    def _weights_observed(self) -> bool:
        """Whether something needs the attention weights as a tensor, which the fused kernel
        never makes: dropout on them while training, or a hook on `attn_drop` (the attention
        maps, `paddle.summary`, the FLOP count)."""
        return (self.training and self.attn_drop.p > 0) or _hooked(self.attn_drop)


class GELU(nn.GELU):
    """`paddle.nn.GELU` (its summary row `GELU-N`), computed in eager float32 on the CPU by
    vit's fused kernel (cpu_kernels.py): Paddle's CPU GELU and its gradient run on one thread,
    the gradient about 10x slower than the kernel's on the default model's [64, 17, 128]. The
    tanh approximation, static graphs and other devices run Paddle's own."""

    def forward(self, x):
        if self._approximate not in (False, "none") or not cpu_kernels.usable(x):
            return super().forward(x)
        return cpu_kernels.gelu(x)


class Mlp(nn.Layer):
    """The block's two-layer perceptron with a GELU between (Eq. 3).

    Args:
        in_features: token width D.
        hidden_features: hidden width (the paper's MLP size), default D.
        out_features: output width, default D.
        drop: dropout after the activation and after the second layer.
    """

    def __init__(self, in_features, hidden_features=None, out_features=None, drop=0.0):
        super().__init__()
        hidden_features = hidden_features or in_features
        out_features = out_features or in_features
        self.fc1 = Linear(in_features, hidden_features)
        self.act = GELU()
        self.fc2 = Linear(hidden_features, out_features)
        # ONE Dropout, called twice: the contract prints a single row for it (docs/contract.md)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        """[B, N, D] -> [B, N, out_features]."""
        x = self.drop(self.act(self.fc1(x)))
        return self.drop(self.fc2(x))


def drop_path(x, drop_prob: float = 0.0, training: bool = False):
    """Drop whole residual branches per sample (stochastic depth, Huang et al. 2016).

    Kept samples are scaled by 1 / (1 - drop_prob) so the expectation is unchanged.
    """
    if drop_prob == 0.0 or not training:
        return x
    keep_prob = 1.0 - drop_prob
    if cpu_kernels.usable(x):  # one kernel for the mask and the product, and one gradient
        return cpu_kernels.drop_path(x, paddle.rand([x.shape[0]], dtype=x.dtype), keep_prob)
    mask_shape = (x.shape[0],) + (1,) * (x.ndim - 1)
    # the 1 / keep_prob scaling goes on the [B, 1, 1] mask: one full-size multiply, not two
    mask = paddle.floor(keep_prob + paddle.rand(mask_shape, dtype=x.dtype)) / keep_prob
    return x * mask


class DropPath(nn.Layer):
    """Stochastic depth as a layer; active only in training mode."""

    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        return drop_path(x, self.drop_prob, self.training)

    def extra_repr(self):
        return f"drop_prob={self.drop_prob}"


class Block(nn.Layer):
    """One Transformer encoder layer: Eq. 2 and Eq. 3, pre-norm with residuals.

    Args:
        dim: token width D.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width as a multiple of D.
        qkv_bias, qk_scale: see `Attention`.
        drop: dropout after the attention projection and in the MLP.
        attn_drop: dropout on the attention weights.
        drop_path: stochastic-depth rate of this block.
        epsilon: LayerNorm epsilon.
    """

    def __init__(self, dim, num_heads, mlp_ratio=4.0, qkv_bias=False, qk_scale=None, drop=0.0,
                 attn_drop=0.0, drop_path=0.0, epsilon=1e-5):
        super().__init__()
        self.norm1 = LayerNorm(dim, epsilon=epsilon)
        self.attn = Attention(dim, num_heads=num_heads, qkv_bias=qkv_bias, qk_scale=qk_scale,
                              attn_drop=attn_drop, proj_drop=drop)
        # ONE drop-path layer serves both residuals: the contract prints one Identity per block
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = LayerNorm(dim, epsilon=epsilon)
        self.mlp = Mlp(in_features=dim, hidden_features=int(dim * mlp_ratio), drop=drop)

    def forward(self, x):
        """[B, N, D] -> [B, N, D]."""
        x = x + self.drop_path(self.attn(self.norm1(x)))  # Eq. 2
        return x + self.drop_path(self.mlp(self.norm2(x)))  # Eq. 3


class PreLogits(nn.Layer):
    """The ImageNet-21k models' representation layer: Linear then tanh (the paper's Sec. 3.1).

    Args:
        in_features: token width D.
        representation_size: width of the representation.
    """

    def __init__(self, in_features: int, representation_size: Optional[int]):
        super().__init__()
        self.fc = Linear(in_features, representation_size)

    def forward(self, x):
        return paddle.tanh(self.fc(x))
