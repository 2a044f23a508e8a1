"""Gradients written with Paddle's operators, for where the kernels' library is not built (no
C++ compiler): the drop-in `Linear` and `LayerNorm` train with these on a CPU.

Paddle's own CPU gradients for both are slow (its reducing and broadcasting kernels are 5-8x
slower than its matrix product and same-shape element-wise ones), and its layer-norm gradient
is wrong for a frozen weight; these use the fast operators only.
"""

import paddle
import paddle.nn.functional as F
from paddle.autograd import PyLayer


def column_sums(matrix):
    """[M, D] -> [1, D], as a product with a row of ones: Paddle's CPU kernels that reduce or
    broadcast are 5-8x slower than its matrix product and same-shape element-wise ones."""
    return paddle.matmul(paddle.ones([1, matrix.shape[0]], matrix.dtype), matrix)


def which_learn(*tensors):
    """Which of a PyLayer's inputs get a gradient: its backward must return None, not a
    gradient, for one that does not learn (a frozen layer)."""
    return [not tensor.stop_gradient for tensor in tensors]


class LinearGradOnCPU(PyLayer):
    """b + x W as one `addmm` whose gradient is three matrix products, where vit's fused
    linear kernel (with its own gradient) is not built.

    Paddle's `addmm` gradient sums the bias gradient with its reducing kernel; with a product
    with ones (`column_sums`) the default model's training step is 4-10 % faster on CPU. The
    fused kernel (the bias inside MKL's product, the gradient as one operation) takes it
    another 5 % (20.5-20.7 against 21.6-22.0 ms, one process).
    """

    @staticmethod
    def forward(ctx, x, weight, bias):
        ctx.save_for_backward(x, weight)
        ctx.learns = which_learn(x, weight, bias)
        return paddle.addmm(bias, x, weight)

    @staticmethod
    def backward(ctx, grad):
        x, weight = ctx.saved_tensor()
        x_learns, weight_learns, bias_learns = ctx.learns
        d_x = paddle.matmul(grad, weight, transpose_y=True) if x_learns else None
        d_weight = paddle.matmul(x, grad, transpose_x=True) if weight_learns else None
        d_bias = column_sums(grad).reshape([weight.shape[1]]) if bias_learns else None
        return d_x, d_weight, d_bias


class LayerNormGradOnCPU(PyLayer):
    """Layer norm with Paddle's forward and a gradient of its own, where vit's fused kernel
    (with its gradient) is not built: one made of matrix products and
    same-shape element-wise operations, the CPU kernels of Paddle's that are fast.

    Paddle's CPU `layer_norm_grad` took 15-20x its forward (8.0 ms for a [4160, 192] batch,
    its forward 0.1 ms), and so most of a small ViT's backward pass; its broadcasting and
    reducing element-wise kernels are 5-8x slower than same-shape ones. This gradient
    recomputes the normalised input from x, sums rows and columns as products with a vector of
    ones, and broadcasts by `expand`: 2.8 ms for that batch, about 25 operations; the fused
    kernel is one pass over each row. Both give the right input gradient when the weight is
    frozen, where Paddle 3.3.1's CPU kernel computes it as if the weight were 1
    (tests/test_kernels.py checks both against a float64 layer-norm gradient).
    """

    @staticmethod
    def forward(ctx, x, weight, bias, epsilon):
        ctx.save_for_backward(x, weight)
        ctx.epsilon = epsilon
        ctx.learns = which_learn(x, weight, bias)
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
            d_weight = column_sums(grad * normed).reshape([width])
        if bias_learns:
            d_bias = column_sums(grad).reshape([width])
        return d_x, d_weight, d_bias
