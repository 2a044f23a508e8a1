"""The kernels as Paddle operators, and when each may run.

A kernel runs for eager float32 on the CPU once the library is built (`usable`; the linear and
attention kernels also need Paddle's MKL, `mkl_usable`), never while `paddle.jit.to_static`
traces the code or in a static graph, whose exports need Paddle's own operators. Each op takes
the thread count Paddle's math runs on (`vit.cpu.math_threads`), so the kernels and MKL share
one setting.
"""

import paddle
from paddle.base.dygraph.base import in_sot_simulation_mode

from .. import cpu
from . import build


def usable(*tensors) -> bool:
    """Whether the kernels can take these tensors: eager mode, float32 on the CPU, kernels built.
    Not while `paddle.jit.to_static` traces the code (SOT reports dynamic mode then; a kernel
    would split its graph), nor in static graphs or exports, which need Paddle's own ops."""
    return (paddle.in_dynamic_mode() and not in_sot_simulation_mode() and all(
        t.place.is_cpu_place() and t.dtype == paddle.float32 for t in tensors)
        and build.available())


def mkl_usable(*tensors) -> bool:
    """`usable`, and built with Paddle's MKL, which the linear and attention kernels call."""
    return usable(*tensors) and build.mkl_library() is not None


def gradient_wanted(*tensors) -> bool:
    """Whether a backward pass will need a gradient through any of these tensors."""
    return paddle.is_grad_enabled() and any(not tensor.stop_gradient for tensor in tensors)


def cpu_gradient_wanted(x) -> bool:
    """Whether `x` is headed into an eager CPU backward pass (not a static graph, another
    device or autocast), where the drop-in layers compute their own gradients."""
    return (paddle.in_dynamic_mode() and paddle.is_grad_enabled() and x.place.is_cpu_place()
            and not paddle.amp.is_autocast_enabled())


def hooked(layer) -> bool:
    """Whether something watches `layer`'s calls with a forward hook (`paddle.summary`, the
    FLOP count, the attention maps), so that the layer must run rather than be computed around."""
    return bool(layer._forward_pre_hooks) or bool(layer._forward_post_hooks)


def _contiguous(tensor):
    return tensor if tensor.is_contiguous() else tensor.contiguous()


def _run(op: str, *arguments):
    return paddle._C_ops._run_custom_op(op, *arguments, cpu.math_threads())


def layer_norm(x, weight, bias, epsilon: float):
    """Layer norm over the last axis of x (any leading shape)."""
    return _run("vit_layer_norm", _contiguous(x), weight, bias, float(epsilon))[0]


def linear(x, weight, bias):
    """x W + b over the last axis of x. Its gradient computes d_x and d_weight only where they
    learn (as they do when this is called)."""
    return _run("vit_linear", _contiguous(x), _contiguous(weight), bias, not x.stop_gradient,
                not weight.stop_gradient)[0]


def attention(qkv, heads: int, scale: float, with_gradient: bool):
    """softmax(scale q k^T) v for each of `heads` heads of qkv [B, N, 3 D] (queries, keys and
    values side by side, as the fused projection gives them), as [B, N, D]. With its gradient
    the op keeps the softmax [B, H, N, N] for the backward pass; without, it makes none."""
    op = "vit_attention_keeping_softmax" if with_gradient else "vit_attention"
    return _run(op, _contiguous(qkv), int(heads), float(scale))[0]


def gelu(x):
    """The exact GELU, x * Phi(x)."""
    return _run("vit_gelu", _contiguous(x))[0]


def drop_path(x, uniform, keep_prob: float):
    """Sample b of x [B, ...] times floor(keep_prob + uniform[b]) / keep_prob: stochastic
    depth's 1 / keep_prob for a kept sample, 0 for a dropped one."""
    return _run("vit_drop_path", _contiguous(x), uniform, float(keep_prob))[0]
