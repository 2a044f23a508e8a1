"""How big a model is: the `paddle.summary` table, parameter counts and FLOPs.

FLOPs here are multiply-adds (one multiply plus one add counts once), the convention of the ViT
paper's successors, timm and fvcore: ViT-B/16 at 224 is 17.6 GFLOPs. `paddle.flops` is not used:
it fails under NumPy 2 with Paddle 3.3 and does not count the attention matmuls.
"""

import contextlib
import difflib
import io
from dataclasses import dataclass
from typing import Tuple

import numpy as np
import paddle
import paddle.nn as nn

from .layers import Attention, to_2tuple
from .variants import build_model


def count_parameters(model: nn.Layer, trainable_only: bool = False) -> int:
    """Return the number of parameters, including `cls_token` and `pos_embed`."""
    return int(sum(int(np.prod(p.shape)) for p in model.parameters()
                   if not (trainable_only and p.stop_gradient)))


def count_parameters_by_name(name: str, **overrides) -> int:
    """Count the parameters of registered model `name` from shapes alone, without initialising
    them (fast even for ViT-H)."""
    with paddle.LazyGuard():
        model = build_model(name, **overrides)
    return count_parameters(model)


@dataclass(frozen=True)
class FlopCount:
    """Multiply-adds of one forward pass, by kind of operation."""

    patch_embed: int  # the patch-projection convolution
    linear: int  # every Linear: q/k/v, attention output, MLP, pre-logits, head
    attention: int  # the two matmuls q k^T and attn v
    input_shape: Tuple[int, ...]

    @property
    def total(self) -> int:
        return self.patch_embed + self.linear + self.attention

    def format(self) -> str:
        """A few lines for the terminal, in GFLOPs (multiply-adds)."""
        rows = [("Conv2D (a ViT: patch embedding)", self.patch_embed), ("Linear layers", self.linear),
                ("attention matmuls", self.attention), ("total", self.total)]
        lines = [f"FLOPs (multiply-adds) for input {list(self.input_shape)}:"]
        lines += [f"  {label:<26}{value:>20,}  ({value / 1e9:.2f} G)" for label, value in rows]
        return "\n".join(lines)


def count_flops(model: nn.Layer, input_shape=(1, 3, 224, 224)) -> FlopCount:
    """Count multiply-adds of one forward pass on an input of `input_shape`.

    Every Conv2D, Linear and Attention reports its work through a forward hook during one
    forward pass in eval mode, so the count follows the model as it runs; the hooks are removed
    afterwards and the model is unchanged.
    """
    totals = {"patch_embed": 0, "linear": 0, "attention": 0}

    def on_linear(layer, inputs, output):
        totals["linear"] += int(np.prod(output.shape[:-1])) * layer.weight.shape[0] * layer.weight.shape[1]

    def on_conv(layer, inputs, output):
        out_channels, in_per_group, kernel_h, kernel_w = layer.weight.shape
        totals["patch_embed"] += int(np.prod(output.shape)) * in_per_group * kernel_h * kernel_w

    def on_attention(layer, inputs, output):
        batch, tokens, dim = inputs[0].shape
        # q k^T and attn v each cost B * heads * N * N * (D / heads) = B * N^2 * D
        totals["attention"] += 2 * batch * tokens * tokens * dim

    handlers = ((nn.Linear, on_linear), (nn.Conv2D, on_conv), (Attention, on_attention))
    hooks = [layer.register_forward_post_hook(handler) for layer in model.sublayers()
             for kind, handler in handlers if isinstance(layer, kind)]
    was_training = model.training
    model.eval()
    try:
        with paddle.no_grad():
            model(paddle.zeros(list(input_shape), dtype="float32"))
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return FlopCount(input_shape=tuple(input_shape), **totals)


def summary_text(model: nn.Layer, input_shape) -> Tuple[str, dict]:
    """Return the text `paddle.summary` prints for `model` and its parameter totals."""
    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        totals = paddle.summary(model, tuple(input_shape))
    return buffer.getvalue(), totals


def summarize(name: str, batch_size: int = 1, **overrides) -> str:
    """Return the `paddle.summary` table of registered model `name` as a fresh process prints it.

    Paddle numbers each row by a per-class counter of layers created so far in the process
    (`Linear-49`); the model is built under a fresh name scope so the numbering starts at 1
    however many models were built before, as in the architecture contract.
    """
    with paddle.utils.unique_name.guard():
        model = build_model(name, **overrides)
    model.eval()
    text, _ = summary_text(model, (batch_size, *input_size(model)))
    return text


def input_size(model: nn.Layer) -> Tuple[int, int, int]:
    """(channels, height, width) of the input `model` is built for (a ViT or a baseline)."""
    if hasattr(model, "patch_embed"):
        return (model.patch_embed.proj.weight.shape[1], *model.patch_embed.img_size)
    return (model.in_chans, *to_2tuple(model.img_size))


def _table_lines(text: str):
    """Lines of a summary table as the contract compares them: trailing spaces stripped, no
    trailing blank lines, and without the dashed rule Paddle prints above the header."""
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if len(lines) > 1 and set(lines[0]) == {"-"} and lines[1].lstrip().startswith("Layer (type)"):
        lines = lines[1:]
    return lines


def table_diff(actual: str, expected: str, expected_name: str = "expected") -> str:
    """Return a unified diff between two summary tables, or "" when they match line for line."""
    return "\n".join(difflib.unified_diff(_table_lines(expected), _table_lines(actual),
                                          fromfile=expected_name, tofile="actual", lineterm=""))
