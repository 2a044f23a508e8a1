"""The parts of a Vision Transformer, in the order its forward pass meets them.

Dosovitskiy et al. (2021), Sec. 3.1: a patch embedding (Eq. 1), then L blocks of multi-head
self-attention (Eq. 2) and an MLP (Eq. 3), each behind a LayerNorm with a residual around it.
Shapes use B (batch), N (tokens), D (embedding width) and H (heads).

The module tree is the architecture contract: `paddle.summary` prints one row per layer, so the
layers, their names and their order stay exactly as they are. See docs/contract.md before adding,
splitting or renaming any layer here.

`Linear`, `LayerNorm` and `GELU` are `paddle.nn`'s, computed on a CPU by vit's fused kernels
(vit/kernels); a layer that has a faster way there asks the kernels once, and computes its
equation itself where they answer None.
"""

from typing import Optional, Tuple

import paddle
import paddle.nn as nn
import paddle.nn.functional as F

from .. import kernels
from ..errors import ModelError
from ..kernels import GELU, LayerNorm, Linear


def to_2tuple(value) -> Tuple[int, int]:
    """Return `value` as (height, width); an int means a square."""
    if isinstance(value, int):
        return (value, value)
    height, width = value
    return (int(height), int(width))


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
        tokens = kernels.patch_embedding(x, self.proj)  # eager float32 on a CPU: one product
        if tokens is not None:
            return tokens
        x = self.proj(x)  # [B, D, H/P, W/P]
        # flatten/transpose are tensor methods, not layers: a Flatten layer would add a row
        # to the summary contract (docs/contract.md).
        return x.flatten(2).transpose((0, 2, 1))  # [B, N, D]

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
        size = height if height == width else (height, width)
        raise ModelError(
            f"input is {got} but the model was built for {want}",
            f"resize the images to {want}, or build the model with img_size={size} "
            "and load weights with their position embeddings resampled",
        )


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
        # eager float32 on a CPU, nothing watching the weights: the lines below in one kernel
        fused = kernels.attention(qkv, self.num_heads, self.scale, self.attn_drop)
        if fused is not None:
            return self.proj_drop(self.proj(fused))
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
        attn = F.softmax(attn, axis=-1)
        # attn_drop's input is this softmax: a forward hook on attn_drop sees the attention
        # map without any change to the model (docs/contract.md)
        attn = self.attn_drop(attn)
        x = attn.matmul(v).transpose((0, 2, 1, 3)).reshape((-1, num_tokens, dim))  # [B, N, D]
        return self.proj_drop(self.proj(x))


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
    uniform = paddle.rand([x.shape[0]], dtype=x.dtype)  # one draw per sample
    fused = kernels.drop_path(x, uniform, keep_prob)  # eager float32 on a CPU: one kernel
    if fused is not None:
        return fused
    # the 1 / keep_prob scaling goes on the [B, 1, 1] mask: one full-size multiply, not two
    mask = paddle.floor(keep_prob + uniform) / keep_prob
    return x * mask.reshape([x.shape[0]] + [1] * (x.ndim - 1))


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
