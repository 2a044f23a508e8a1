"""A ViT in PyTorch with timm's module names (`patch_embed.proj`, `blocks.N.attn.qkv`, ...), the
reference forward pass for the conversion tests.

timm itself cannot be imported beside the CPU wheel of torch 2.13 (it needs torchvision), so this
file transcribes timm's `VisionTransformer` forward for the classic ViT (class token, no
LayerScale): the numbers come from PyTorch's kernels, independently of Paddle.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


class Attention(nn.Module):
    def __init__(self, dim, heads, qkv_bias=True):
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x):
        b, n, c = x.shape
        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        attn = (q @ k.transpose(-2, -1)) * (c // self.heads) ** -0.5
        return self.proj((attn.softmax(-1) @ v).transpose(1, 2).reshape(b, n, c))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, hidden, eps):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim, eps=eps), Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim, eps=eps), Mlp(dim, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch, chans, dim):
        super().__init__()
        self.proj = nn.Conv2d(chans, dim, patch, patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class PreLogits(nn.Module):
    def __init__(self, dim, size):
        super().__init__()
        self.fc = nn.Linear(dim, size)

    def forward(self, x):
        return torch.tanh(self.fc(x))


class TorchViT(nn.Module):
    def __init__(self, img=16, patch=4, chans=3, dim=32, depth=2, heads=4, mlp=64, classes=5,
                 eps=1e-6, representation=None, seed=0):
        super().__init__()
        torch.manual_seed(seed)
        grid = (img // patch) ** 2
        self.patch_embed = PatchEmbed(patch, chans, dim)
        self.cls_token = nn.Parameter(torch.randn(1, 1, dim) * 0.5)
        self.pos_embed = nn.Parameter(torch.randn(1, grid + 1, dim) * 0.5)
        self.blocks = nn.ModuleList([Block(dim, heads, mlp, eps) for _ in range(depth)])
        self.norm = nn.LayerNorm(dim, eps=eps)
        self.pre_logits = PreLogits(dim, representation) if representation else None
        self.head = nn.Linear(representation or dim, classes)
        with torch.no_grad():  # non-trivial norms and biases, so every tensor matters
            for module in self.modules():
                if isinstance(module, nn.LayerNorm):
                    module.weight.uniform_(0.5, 1.5)
                    module.bias.uniform_(-0.2, 0.2)
                elif isinstance(module, (nn.Linear, nn.Conv2d)):
                    module.bias.uniform_(-0.2, 0.2)

    def forward(self, x):
        x = self.patch_embed(x)
        x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)[:, 0]
        if self.pre_logits is not None:
            x = self.pre_logits(x)
        return self.head(x)


def to_google_npz(model: TorchViT, path):
    """Write `model`'s weights under the original ViT checkpoint's names and layouts
    (Flax: Dense kernels [in, out], conv kernel HWIO, attention kernels [D, heads, head_dim])."""
    import numpy as np

    sd = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    dim = sd["cls_token"].shape[-1]
    heads = model.blocks[0].attn.heads
    out = {"cls": sd["cls_token"], "Transformer/posembed_input/pos_embedding": sd["pos_embed"],
           "embedding/kernel": sd["patch_embed.proj.weight"].transpose(2, 3, 1, 0),
           "embedding/bias": sd["patch_embed.proj.bias"],
           "Transformer/encoder_norm/scale": sd["norm.weight"],
           "Transformer/encoder_norm/bias": sd["norm.bias"],
           "head/kernel": sd["head.weight"].T, "head/bias": sd["head.bias"]}
    if model.pre_logits is not None:
        out["pre_logits/kernel"] = sd["pre_logits.fc.weight"].T
        out["pre_logits/bias"] = sd["pre_logits.fc.bias"]
    for i in range(len(model.blocks)):
        b, p = f"blocks.{i}.", f"Transformer/encoderblock_{i}/"
        a = p + "MultiHeadDotProductAttention_1/"
        q, k, v = np.split(sd[b + "attn.qkv.weight"], 3, axis=0)  # each [D_out, D_in]
        qb, kb, vb = np.split(sd[b + "attn.qkv.bias"], 3)
        for name, w, bias in (("query", q, qb), ("key", k, kb), ("value", v, vb)):
            out[a + f"{name}/kernel"] = w.T.reshape(dim, heads, dim // heads)
            out[a + f"{name}/bias"] = bias.reshape(heads, dim // heads)
        out[a + "out/kernel"] = sd[b + "attn.proj.weight"].T.reshape(heads, dim // heads, dim)
        out[a + "out/bias"] = sd[b + "attn.proj.bias"]
        out[p + "LayerNorm_0/scale"], out[p + "LayerNorm_0/bias"] = sd[b + "norm1.weight"], sd[b + "norm1.bias"]
        out[p + "LayerNorm_2/scale"], out[p + "LayerNorm_2/bias"] = sd[b + "norm2.weight"], sd[b + "norm2.bias"]
        out[p + "MlpBlock_3/Dense_0/kernel"] = sd[b + "mlp.fc1.weight"].T
        out[p + "MlpBlock_3/Dense_0/bias"] = sd[b + "mlp.fc1.bias"]
        out[p + "MlpBlock_3/Dense_1/kernel"] = sd[b + "mlp.fc2.weight"].T
        out[p + "MlpBlock_3/Dense_1/bias"] = sd[b + "mlp.fc2.bias"]
    np.savez(path, **out)


def timm_resample_abs_pos_embed(posemb, new_size, num_prefix_tokens=1):
    """timm.layers.resample_abs_pos_embed (timm 1.0), transcribed: bicubic, antialias=True."""
    hw = int(math.sqrt(posemb.shape[1] - num_prefix_tokens))
    prefix, grid = posemb[:, :num_prefix_tokens], posemb[:, num_prefix_tokens:]
    dim = grid.shape[-1]
    grid = grid.float().reshape(1, hw, hw, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=new_size, mode="bicubic", antialias=True)
    grid = grid.permute(0, 2, 3, 1).reshape(1, -1, dim)
    return torch.cat([prefix, grid], dim=1)
