"""Drop-in `Linear`, `LayerNorm` and `GELU`: `paddle.nn`'s layers, computed by vit's kernels
where they can be.

Each keeps the class name, parameters, key names and summary-table row (`Linear-N`,
`LayerNorm-N`, `GELU-N`) of the `paddle.nn` layer it extends (docs/contract.md), so the model
files use them exactly as they would Paddle's. Static graphs, exports and other devices run
Paddle's own forward, which Paddle Inference fuses (one oneDNN FC for a Linear).
"""

import paddle
import paddle.nn as nn

from . import fallback, ops


class Linear(nn.Linear):
    """`paddle.nn.Linear`, computed as one operation with its gradient as another.

    Eager float32 on the CPU runs vit's fused kernel (the bias added inside MKL's product, not
    in a second pass), in training and inference. Elsewhere training runs one `addmm`
    (bias + x W): Paddle's own forward runs the product and the bias as two kernels, and their
    gradients as two more, which made small models' training steps 10-20 % slower; on a CPU
    without the kernel its gradient is `fallback.LinearGradOnCPU`'s.
    """

    def forward(self, x):
        # the kernel test first: `paddle.jit.to_static` (SOT) breaks its graph at
        # `self.bias is None`, and the test is False while it traces
        if ops.mkl_usable(x) and self.bias is not None:
            return ops.linear(x, self.weight, self.bias)
        if not self.training or self.bias is None:
            return super().forward(x)
        flat = x.reshape([-1, x.shape[-1]])  # [B*N, in]
        if ops.cpu_gradient_wanted(x):
            out = fallback.LinearGradOnCPU.apply(flat, self.weight, self.bias)
        else:
            out = paddle.addmm(self.bias, flat, self.weight)  # [B*N, out]
        return out.reshape([*x.shape[:-1], out.shape[-1]])


class LayerNorm(nn.LayerNorm):
    """`paddle.nn.LayerNorm`, whose gradient on CPU is vit's fused kernel (which then computes
    the forward too) or, where that is not built, `fallback.LayerNormGradOnCPU`'s. Inference
    without a gradient runs Paddle's own layer norm, as does a norm without weight or bias or
    over more than one axis."""

    def __init__(self, normalized_shape, *args, **kwargs):
        super().__init__(normalized_shape, *args, **kwargs)
        self._own_gradient = (self.weight is not None and self.bias is not None
                              and len(self._normalized_shape) == 1)

    def forward(self, x):
        # the kernel test first: `paddle.jit.to_static` (SOT) breaks its graph at
        # `paddle.is_grad_enabled()`, and the test is False while it traces
        if ops.usable(x) and self._own_gradient and ops.cpu_gradient_wanted(x):
            return ops.layer_norm(x, self.weight, self.bias, self._epsilon)
        if self._own_gradient and self.training and ops.cpu_gradient_wanted(x):
            return fallback.LayerNormGradOnCPU.apply(x, self.weight, self.bias, self._epsilon)
        return super().forward(x)


class GELU(nn.GELU):
    """`paddle.nn.GELU`, computed in eager float32 on the CPU by vit's fused kernel: Paddle's
    CPU GELU and its gradient run on one thread, the gradient about 10x slower than the
    kernel's on the default model's [64, 17, 128]. The tanh approximation runs Paddle's own."""

    def forward(self, x):
        if self._approximate not in (False, "none") or not ops.usable(x):
            return super().forward(x)
        return ops.gelu(x)
