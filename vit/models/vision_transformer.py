"""The Vision Transformer of Dosovitskiy et al., "An Image is Worth 16x16 Words" (ICLR 2021).

`VisionTransformer.forward_features` follows the paper's equations in order:
    Eq. 1  z_0 = [x_class; x_p^1 E; ...; x_p^N E] + E_pos     (patch_embed, cls_token, pos_embed)
    Eq. 2  z'_l = MSA(LN(z_{l-1})) + z_{l-1}                   (Block, first residual)
    Eq. 3  z_l = MLP(LN(z'_l)) + z'_l                          (Block, second residual)
    Eq. 4  y = LN(z_L^0)                                       (norm, class token)
and `forward_head` maps y to class logits. `forward_intermediates` returns the tokens of chosen
blocks (timm's name) for embeddings and dense features; `set_grad_checkpointing` trades
memory for compute in training. Attribute names and layer order are PaddleClas's and form the
summary contract: see docs/contract.md before changing them.
"""

from typing import List, NamedTuple, Optional, Sequence, Union

import numpy as np
import paddle
import paddle.nn as nn
from paddle.distributed.fleet.utils import recompute

from .layers import Block, LayerNorm, Linear, PatchEmbed, PreLogits

# Cut at two standard deviations. Paddle's `a`/`b` are absolute bounds, so PaddleClas's
# TruncatedNormal(std=0.02), like timm's trunc_normal_(std=.02), is never actually truncated.
trunc_normal_ = nn.initializer.TruncatedNormal(std=0.02, a=-0.04, b=0.04)
zeros_ = nn.initializer.Constant(value=0.0)
ones_ = nn.initializer.Constant(value=1.0)


class BlockTokens(NamedTuple):
    """The output of one Transformer block: its class token [B, D] and its patch tokens laid
    out as the patch grid [B, D, rows, columns] (NCHW, as a CNN's feature map)."""

    class_token: paddle.Tensor
    patch_tokens: paddle.Tensor


class VisionTransformer(nn.Layer):
    """ViT for image classification.

    Args:
        img_size: input size the model is built for, int or (height, width).
        patch_size: side of a square patch in pixels.
        in_chans: image channels.
        num_classes: classes of the head; 0 removes the head and `forward` returns features.
        embed_dim: token width D.
        depth: number of Transformer blocks L.
        num_heads: attention heads per block.
        mlp_ratio: MLP hidden width as a multiple of D.
        qkv_bias: learn a bias on the query/key/value projection.
        qk_scale: attention scale; None means 1 / sqrt(D / heads).
        drop_rate: dropout after the position embedding, the attention projection and in MLPs.
        attn_drop_rate: dropout on attention weights.
        drop_path_rate: stochastic depth of the last block; it rises linearly from 0 over depth.
        epsilon: LayerNorm epsilon.
        representation_size: width of the pre-logits layer of the ImageNet-21k models; None
            (the default) leaves it out.
        zero_head: initialise the head to zeros, as the paper does for fine-tuning.
    """

    def __init__(self, img_size=224, patch_size=16, in_chans=3, num_classes=1000, embed_dim=768,
                 depth=12, num_heads=12, mlp_ratio=4.0, qkv_bias=False, qk_scale=None,
                 drop_rate=0.0, attn_drop_rate=0.0, drop_path_rate=0.0, epsilon=1e-5,
                 representation_size: Optional[int] = None, zero_head: bool = False):
        super().__init__()
        self.num_classes = num_classes
        self.num_features = self.embed_dim = embed_dim

        self.patch_embed = PatchEmbed(img_size=img_size, patch_size=patch_size,
                                      in_chans=in_chans, embed_dim=embed_dim)
        num_patches = self.patch_embed.num_patches
        # Parameters of the top-level layer, which paddle.summary does not count: this is why
        # the contract's total is 443,904 below the model's size (docs/contract.md).
        self.pos_embed = self.create_parameter(shape=(1, num_patches + 1, embed_dim),
                                               default_initializer=trunc_normal_)
        self.cls_token = self.create_parameter(shape=(1, 1, embed_dim),
                                               default_initializer=trunc_normal_)
        self.pos_drop = nn.Dropout(p=drop_rate)

        drop_path_rates = np.linspace(0, drop_path_rate, depth)  # stochastic depth: linear rule
        self.blocks = nn.LayerList([
            Block(dim=embed_dim, num_heads=num_heads, mlp_ratio=mlp_ratio, qkv_bias=qkv_bias,
                  qk_scale=qk_scale, drop=drop_rate, attn_drop=attn_drop_rate,
                  drop_path=float(drop_path_rates[i]), epsilon=epsilon)
            for i in range(depth)
        ])
        self.norm = LayerNorm(embed_dim, epsilon=epsilon)

        if representation_size:
            self.pre_logits = PreLogits(embed_dim, representation_size)
            self.num_features = representation_size
        else:
            self.pre_logits = None
        self.head = (Linear(self.num_features, num_classes) if num_classes > 0
                     else nn.Identity())

        self.apply(_init_weights)
        if zero_head:
            self.reset_head(num_classes, zero=True)
        self.grad_checkpointing = False  # a switch, not a layer: the contract is unchanged

    def reset_head(self, num_classes: int, zero: bool = True):
        """Replace the classifier for `num_classes` classes (zeros, as the paper fine-tunes)."""
        self.num_classes = num_classes
        if num_classes <= 0:
            self.head = nn.Identity()
            return
        self.head = Linear(self.num_features, num_classes)
        if zero:
            zeros_(self.head.weight)
        else:
            trunc_normal_(self.head.weight)
        zeros_(self.head.bias)

    @property
    def grid_size(self):
        """Patch grid (rows, columns) of the input size the model is built for."""
        return self.patch_embed.grid_size

    def forward_features(self, x):
        """Eq. 1-4: images [B, C, H, W] -> class-token representation y, [B, D]."""
        x = self.embed_tokens(x)  # Eq. 1
        for block in self.blocks:  # Eq. 2-3
            x = self._run_block(block, x)
        x = self.norm(x)  # Eq. 4
        return x[:, 0]

    def embed_tokens(self, x):
        """Eq. 1: images [B, C, H, W] -> z_0, the class token and the patch embeddings with
        their positions, [B, N+1, D]."""
        x = self.patch_embed(x)  # [B, N, D]
        cls_tokens = self.cls_token.expand((x.shape[0], -1, -1))  # [B, 1, D]
        x = paddle.concat((cls_tokens, x), axis=1)  # [B, N+1, D]
        # expanded first: Paddle's CPU add that broadcasts over the batch took 12x a same-shape
        # add (0.20 against 0.017 ms for the default model's [64, 17, 64], forward)
        return self.pos_drop(x + self.pos_embed.expand(x.shape))

    def set_grad_checkpointing(self, enable: bool = True):
        """Recompute each block's activations in the backward pass instead of keeping them
        (gradient checkpointing, timm's name): most of a training step's memory, for about one
        more forward pass. Only while training with gradients; eval and no-grad are unchanged."""
        self.grad_checkpointing = enable

    def _run_block(self, block, x):
        """`block(x)`, recomputed in the backward pass if checkpointing is on and a gradient
        will flow back through x (a frozen backbone keeps nothing to recompute)."""
        if not (self.grad_checkpointing and self.training and paddle.is_grad_enabled()
                and not x.stop_gradient):
            return block(x)
        # Paddle's hook-based recompute: it runs the forward with gradients on, so vit's kernels
        # take the paths they take without it and loss and gradients are bit for bit the same
        # (the default, a PyLayer, runs it under no_grad, where LayerNorm and attention pick
        # other kernels); dropout and drop path draw again from the saved random state.
        return recompute(block, x, preserve_rng_state=True, use_reentrant=False)

    def forward_intermediates(self, x, blocks: Union[int, Sequence[int]] = 1,
                              norm: bool = False) -> List[BlockTokens]:
        """The tokens of chosen blocks for images [B, C, H, W], in block order.

        Args:
            blocks: an int n takes the last n blocks; a sequence names blocks by index (0 is
                the first, -1 the last).
            norm: pass each output through the final norm (Eq. 4's LN); the raw block outputs
                otherwise.

        Raises:
            IndexError: a block the model does not have, naming its depth.
        """
        chosen = self.block_indices(blocks)
        x = self.embed_tokens(x)
        taken = []
        rows, columns = self.grid_size
        for index, block in enumerate(self.blocks[:chosen[-1] + 1]):
            x = self._run_block(block, x)
            if index in chosen:
                out = self.norm(x) if norm else x
                grid = out[:, 1:].transpose([0, 2, 1]).reshape([x.shape[0], -1, rows, columns])
                taken.append(BlockTokens(out[:, 0], grid))
        return taken

    def block_indices(self, blocks: Union[int, Sequence[int]]) -> List[int]:
        """`blocks` of `forward_intermediates` as sorted, non-negative block indices."""
        depth = len(self.blocks)
        wanted = list(range(depth - blocks, depth)) if isinstance(blocks, int) else list(blocks)
        if isinstance(blocks, int) and not 1 <= blocks <= depth:
            raise IndexError(f"the last {blocks} blocks: the model has {depth}")
        for index in wanted:
            if not -depth <= index < depth:
                raise IndexError(f"block {index}: the model has {depth} blocks "
                                 f"(0 to {depth - 1}, or -{depth} to -1 from the end)")
        return sorted({index % depth for index in wanted})

    def forward_head(self, features, pre_logits: bool = False):
        """Features [B, D] -> logits [B, num_classes] (or the representation if `pre_logits`)."""
        if self.pre_logits is not None:
            features = self.pre_logits(features)
        return features if pre_logits else self.head(features)

    def forward(self, x):
        """Images [B, C, H, W] -> logits [B, num_classes], or features [B, D] with no head."""
        return self.forward_head(self.forward_features(x))


def _init_weights(layer):
    """Paper/PaddleClas initialisation: truncated normal (std 0.02) Linear weights, zero biases,
    LayerNorm scale 1 and shift 0. The patch convolution keeps Paddle's default, as PaddleClas."""
    if isinstance(layer, nn.Linear):
        trunc_normal_(layer.weight)
        if layer.bias is not None:
            zeros_(layer.bias)
    elif isinstance(layer, nn.LayerNorm):
        zeros_(layer.bias)
        ones_(layer.weight)
