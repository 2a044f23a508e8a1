"""vit's fused CPU kernels (vit/kernels) against float64 references and Paddle's own layers:
each kernel and each fallback gradient, and the model's choice of path (eager, traced, hooked,
dropout on the attention weights). tests/test_kernel_build.py checks the build and threads."""

import shutil

import numpy as np
import paddle
import pytest

from vit.kernels import GELU, build, ops
from vit.models import create_model

TINY = "ViT_tiny_patch4_16"


def _images(batch, size, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return paddle.to_tensor(rng.standard_normal((batch, channels, *size)).astype("float32"))


def test_drop_path_on_cpu_scales_each_sample_by_its_draw(cpu_path, monkeypatch):
    """Stochastic depth on both CPU paths (the fused kernel, Paddle's operators): sample b is
    multiplied by floor(keep + u_b) / keep for Paddle's next uniform draw u_b, so a seed
    gives the same samples dropped on either path; the gradient is the same product of the
    output's gradient."""
    from vit.models.layers import drop_path

    calls = _counting_calls(monkeypatch, ops, "drop_path")
    rng = np.random.default_rng(4)
    values, upstream = rng.standard_normal((2, 40, 3, 5))
    paddle.seed(11)
    factor = np.floor(0.7 + paddle.rand([40]).numpy()) / np.float32(0.7)
    assert 0 < (factor == 0).sum() < 40  # some samples dropped, some kept
    paddle.seed(11)
    x = paddle.to_tensor(values.astype("float32"), stop_gradient=False)
    out = drop_path(x, 0.3, training=True)
    out.backward(paddle.to_tensor(upstream.astype("float32")))
    np.testing.assert_allclose(out.numpy(), values * factor[:, None, None], rtol=1e-6, atol=0)
    np.testing.assert_allclose(x.grad.numpy(), upstream * factor[:, None, None], rtol=1e-6,
                               atol=0)
    assert len(calls) == (cpu_path == "fused kernel")


def _layer_norm_gradients(x, weight, upstream, epsilon):
    """Float64 gradients of layer norm over the last axis: (d_x, d_weight, d_bias)."""
    centred = x - x.mean(-1, keepdims=True)
    inv_std = 1 / np.sqrt((centred ** 2).mean(-1, keepdims=True) + epsilon)
    normed, scaled = centred * inv_std, upstream * weight
    d_x = (scaled - scaled.mean(-1, keepdims=True)
           - normed * (scaled * normed).mean(-1, keepdims=True)) * inv_std
    rows = tuple(range(x.ndim - 1))
    return d_x, (upstream * normed).sum(rows), upstream.sum(rows)


def _train_step_through(layer, reference, weight, bias, inputs, upstream, frozen):
    """`layer` given `weight` and `bias` and frozen as `frozen` says ("weight", "both" or
    "input"), in train mode: its output, Paddle's own `reference` layer's output for the same
    input and weights, and the gradients (x, weight, bias) of a backward pass from `upstream`."""
    layer.set_state_dict({"weight": paddle.to_tensor(weight.astype("float32")),
                          "bias": paddle.to_tensor(bias.astype("float32"))})
    reference.set_state_dict(layer.state_dict())
    layer.train()
    layer.weight.stop_gradient = frozen in ("weight", "both")
    layer.bias.stop_gradient = frozen == "both"
    x = paddle.to_tensor(inputs.astype("float32"), stop_gradient=frozen == "input")
    out = layer(x)
    out.backward(paddle.to_tensor(upstream.astype("float32")))
    return out.numpy(), reference(x).numpy(), (x.grad, layer.weight.grad, layer.bias.grad)


def _assert_gradients(got, expected, frozen):
    """Each gradient within 1e-5 of the largest expected value, and None where it does not learn."""
    learns = (frozen != "input", frozen in ("nothing", "input"), frozen != "both")
    for gradient, want, learning in zip(got, expected, learns):
        if not learning:
            assert gradient is None
            continue
        np.testing.assert_allclose(gradient.numpy(), want, rtol=0,
                                   atol=1e-5 * np.abs(want).max())


@pytest.fixture(params=["fused kernel", "python"])
def cpu_path(request, monkeypatch):
    """Each of the layers' two CPU paths: vit's fused kernels, which must build wherever a
    C++ compiler is, and the fallback without them (vit/kernels/fallback.py)."""
    if request.param == "python":
        monkeypatch.setattr(build, "available", lambda: False)
    elif not build.available():
        if shutil.which("c++") or shutil.which("g++"):
            pytest.fail("the fused CPU kernels did not build although a C++ compiler is here")
        pytest.skip("no C++ compiler to build the fused CPU kernels")
    return request.param


def _counting_calls(monkeypatch, module, name, calls=None):
    """Wrap module.name so that the returned list (`calls`, else a new one) gets its name
    once per call."""
    calls, original = [] if calls is None else calls, getattr(module, name)

    def counted(*args, **kwargs):
        calls.append(name)
        return original(*args, **kwargs)
    monkeypatch.setattr(module, name, counted)
    return calls


@pytest.mark.parametrize("frozen", ["nothing", "weight", "both"])
def test_layer_norm_gradient_on_cpu_is_layer_norms(frozen, cpu_path, monkeypatch):
    """The model's LayerNorm computes its CPU gradient itself (vit/kernels/drop_in.py): Paddle's
    output, the float64 layer-norm gradients, and None for parameters that do not learn. (With
    the weight frozen, Paddle 3.3.1's own CPU kernel gives the input gradient as if the weight
    were 1, so the reference is computed here, not taken from paddle.nn.LayerNorm.)"""
    from vit.kernels import LayerNorm

    calls = _counting_calls(monkeypatch, ops, "layer_norm")
    rng = np.random.default_rng(0)
    weight, bias = rng.uniform(0.5, 1.5, 48), rng.standard_normal(48)
    inputs = 3 * rng.standard_normal((5, 7, 48)) + 1
    upstream = rng.standard_normal((5, 7, 48))
    out, paddles, gradients = _train_step_through(
        LayerNorm(48, epsilon=1e-6), paddle.nn.LayerNorm(48, epsilon=1e-6), weight, bias,
        inputs, upstream, frozen)

    np.testing.assert_allclose(out, paddles, rtol=0, atol=1e-6)
    _assert_gradients(gradients, _layer_norm_gradients(inputs, weight, upstream, 1e-6), frozen)
    assert len(calls) == (cpu_path == "fused kernel")


def _softmax(scores):
    shifted = np.exp(scores - scores.max(-1, keepdims=True))
    return shifted / shifted.sum(-1, keepdims=True)


def test_gelu_on_cpu_is_the_exact_gelu(cpu_path, monkeypatch):
    """The MLP's GELU, forward and gradient, against float64's x * Phi(x), including values
    far into both tails, on a tensor that the fused kernel splits unevenly between threads."""
    from scipy.special import erf

    calls = _counting_calls(monkeypatch, ops, "gelu")
    rng = np.random.default_rng(3)
    values = 3 * rng.standard_normal((1 << 15) + 7)
    values[:6] = [0.0, 1e-30, -30.0, 30.0, -1e30, 1e30]
    upstream = rng.standard_normal(values.shape)
    x = paddle.to_tensor(values.astype("float32"), stop_gradient=False)
    out = GELU()(x)
    out.backward(paddle.to_tensor(upstream.astype("float32")))

    cdf = 0.5 * (1 + erf(values / np.sqrt(2)))
    density = np.exp(-0.5 * np.minimum(values ** 2, 1e4)) / np.sqrt(2 * np.pi)
    np.testing.assert_allclose(out.numpy(), values * cdf, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(x.grad.numpy(), upstream * (cdf + values * density),
                               rtol=0, atol=1e-6)
    assert len(calls) == (cpu_path == "fused kernel")


def test_to_static_traces_paddles_attention_not_the_fused_kernels(monkeypatch):
    """`paddle.jit.to_static` (SOT) runs the code in dynamic mode while it traces: the model
    must still choose Paddle's operators there, or each kernel call would split the graph and
    an exported graph would need the kernels' library."""
    if not build.available():
        pytest.skip("the fused CPU kernels are not built here")
    # per block: one attention, four linears (qkv, proj, fc1, fc2) and a GELU; the patch
    # embedding and the head
    expected = {"attention": 6, "linear": 26, "gelu": 6} if build.mkl_library() else {"gelu": 6}
    calls = []
    for kernel in expected:
        _counting_calls(monkeypatch, ops, kernel, calls)
    model = create_model(TINY, num_classes=3)
    model.eval()
    images = _images(2, (16, 16))
    with paddle.no_grad():
        eager = model(images).numpy()
    assert {kernel: calls.count(kernel) for kernel in expected} == expected
    traced = paddle.jit.to_static(model.forward)
    for _ in range(2):  # tracing, then the compiled graph
        with paddle.no_grad():
            np.testing.assert_allclose(traced(images).numpy(), eager, rtol=0, atol=1e-5)
    assert {kernel: calls.count(kernel) for kernel in expected} == expected


def _attention_float64(qkv, heads, scale):
    """Eq. 2's heads from a fused projection [B, N, 3D], in float64: [B, N, D]."""
    batch, tokens, width = qkv.shape
    q, k, v = qkv.reshape(batch, tokens, 3, heads, width // 3 // heads).transpose(2, 0, 3, 1, 4)
    weights = _softmax(scale * q @ k.transpose(0, 1, 3, 2))  # [B, H, N, N]
    return (weights @ v).transpose(0, 2, 1, 3).reshape(batch, tokens, width // 3)


@pytest.fixture
def attention_kernel():
    if not build.available():
        pytest.skip("the fused CPU kernels are not built here")
    if build.mkl_library() is None:
        pytest.skip("this Paddle build has no MKL, which the fused attention calls")
    return ops


@pytest.mark.parametrize("batch,tokens,dim,heads", [(2, 17, 64, 4), (1, 577, 48, 3),
                                                     (3, 1, 8, 2)])
def test_fused_attention_is_attention(batch, tokens, dim, heads, attention_kernel, monkeypatch):
    """The fused attention kernel, forward with and without its gradient, and its gradient
    with respect to the fused projection, against float64: short sequences, one longer than
    a block of queries (577), and a single token."""
    from vit.kernels import attention

    attn_drop = paddle.nn.Dropout(0.0)  # nothing watches the weights
    calls = _counting_calls(monkeypatch, attention_kernel, "attention")
    rng = np.random.default_rng(5)
    values = 2 * rng.standard_normal((batch, tokens, 3 * dim))
    upstream = rng.standard_normal((batch, tokens, dim))
    scale = (dim // heads) ** -0.5
    qkv = paddle.to_tensor(values.astype("float32"), stop_gradient=False)
    out = attention(qkv, heads, scale, attn_drop)
    out.backward(paddle.to_tensor(upstream.astype("float32")))
    with paddle.no_grad():
        without_gradient = attention(qkv, heads, scale, attn_drop).numpy()

    expected = _attention_float64(values, heads, scale)
    bound = 1e-6 * np.abs(values).max()  # float32 rounding of scores and sums of that size
    np.testing.assert_allclose(out.numpy(), expected, rtol=0, atol=bound)
    np.testing.assert_allclose(without_gradient, expected, rtol=0, atol=bound)
    # the float64 gradient by central differences would be slow; by the chain rule instead
    q, k, v = values.reshape(batch, tokens, 3, heads, dim // heads).transpose(2, 0, 3, 1, 4)
    weights = _softmax(scale * q @ k.transpose(0, 1, 3, 2))
    d_out = upstream.reshape(batch, tokens, heads, dim // heads).transpose(0, 2, 1, 3)
    d_v = weights.transpose(0, 1, 3, 2) @ d_out
    d_weights = d_out @ v.transpose(0, 1, 3, 2)
    d_scores = weights * (d_weights - (d_weights * weights).sum(-1, keepdims=True))
    d_q, d_k = scale * d_scores @ k, scale * d_scores.transpose(0, 1, 3, 2) @ q
    d_qkv = np.stack([d_q, d_k, d_v]).transpose(1, 3, 0, 2, 4).reshape(values.shape)
    np.testing.assert_allclose(qkv.grad.numpy(), d_qkv, rtol=0, atol=1e-5 * np.abs(d_qkv).max())
    assert len(calls) == 2


def test_the_model_trains_the_same_with_the_fused_attention(attention_kernel, monkeypatch):
    """A training step's loss and every parameter's gradient are those of Paddle's own
    attention (transposes, two products and a softmax), to float32 rounding."""
    calls = _counting_calls(monkeypatch, attention_kernel, "attention")
    images = _images(4, (16, 16))
    labels = paddle.to_tensor([0, 1, 2, 1])
    results = []
    for fused in (True, False):
        monkeypatch.setattr(attention_kernel, "mkl_usable", lambda *tensors, on=fused: on)
        paddle.seed(3)
        model = create_model(TINY, num_classes=3)
        model.train()
        loss = paddle.nn.functional.cross_entropy(model(images), labels)
        loss.backward()
        results.append((loss.item(), {name: p.grad.numpy() for name, p in
                                      model.named_parameters()}))
    (fused_loss, fused_grads), (loss, grads) = results
    assert len(calls) == 6
    assert fused_loss == pytest.approx(loss, rel=1e-6)
    for name, grad in grads.items():
        np.testing.assert_allclose(fused_grads[name], grad, rtol=0,
                                   atol=1e-5 * np.abs(grad).max() + 1e-9, err_msg=name)


@pytest.mark.parametrize("shape", [(2, 17, 64), (5, 48), (0, 64)])
def test_fused_linear_is_paddles_linear(shape, attention_kernel, monkeypatch):
    """In eval mode the layers' Linear runs the fused kernel (bias inside the product):
    Paddle's linear to float32 rounding, for 3-D and 2-D inputs and no rows; with a gradient
    wanted too, and the kernel's input gradient is grad W^T."""
    from vit.kernels import Linear

    calls = _counting_calls(monkeypatch, attention_kernel, "linear")
    layer = Linear(shape[-1], 24)
    layer.eval()
    x = paddle.to_tensor(np.random.default_rng(1).standard_normal(shape).astype("float32"))
    with paddle.no_grad():
        out = layer(x)
    expected = paddle.nn.functional.linear(x, layer.weight, layer.bias)
    assert out.shape == [*shape[:-1], 24] and len(calls) == 1
    np.testing.assert_allclose(out.numpy(), expected.numpy(), rtol=1e-6, atol=1e-6)
    x.stop_gradient = False
    layer(x).sum().backward()
    assert len(calls) == 2 and x.grad.shape == list(shape)
    expected = np.broadcast_to(layer.weight.numpy().sum(1), shape)  # ones [..., 24] W^T
    np.testing.assert_allclose(x.grad.numpy(), expected, rtol=1e-6, atol=1e-6)


def test_patch_embedding_on_cpu_is_the_convolution(attention_kernel, monkeypatch):
    """Eager float32 on the CPU computes the patch embedding as patches times the weight (the
    fused linear kernel), not as Paddle's convolution: the same tokens and gradients (image,
    weight, bias) on a non-square image with four channels; with a hook on `proj` (the summary
    table, the FLOP count) the convolution layer itself runs and the hook sees its output."""
    from vit.models.layers import PatchEmbed

    calls = _counting_calls(monkeypatch, attention_kernel, "linear")
    embed = PatchEmbed(img_size=(8, 12), patch_size=4, in_chans=4, embed_dim=5)
    values = np.random.default_rng(7).standard_normal((3, 4, 8, 12)).astype("float32")
    upstream = paddle.to_tensor(np.random.default_rng(8).standard_normal((3, 6, 5)),
                                dtype="float32")
    results = []
    for fused in (True, False):
        monkeypatch.setattr(attention_kernel, "mkl_usable", lambda *tensors, on=fused: on)
        embed.clear_gradients()
        x = paddle.to_tensor(values, stop_gradient=False)
        tokens = embed(x)
        tokens.backward(upstream)
        results.append([tokens.numpy(), x.grad.numpy(), embed.proj.weight.grad.numpy(),
                        embed.proj.bias.grad.numpy()])
    assert len(calls) == 1 and results[0][0].shape == (3, 6, 5)
    for fused, paddles in zip(*results):
        np.testing.assert_allclose(fused, paddles, rtol=0, atol=1e-5 * np.abs(paddles).max())
    monkeypatch.setattr(attention_kernel, "mkl_usable", lambda *tensors: True)
    seen = []
    embed.proj.register_forward_post_hook(lambda layer, inputs, output: seen.append(output.shape))
    np.testing.assert_allclose(embed(paddle.to_tensor(values)).numpy(), results[1][0], rtol=0,
                               atol=1e-5)
    assert seen == [[3, 5, 2, 3]] and len(calls) == 1


def test_attention_weights_stay_visible_to_hooks_and_dropout(attention_kernel, monkeypatch):
    """The fused kernel never forms the attention weights, so whatever needs them gets
    Paddle's own attention: a hook on `attn_drop` (the attention maps) and attention dropout
    in training; without either, eval and training run the kernel."""
    calls, kept, original = [], [], attention_kernel.attention

    def attention(qkv, heads, scale, with_gradient):
        (kept if with_gradient else calls).append(qkv.shape)
        return original(qkv, heads, scale, with_gradient)
    monkeypatch.setattr(attention_kernel, "attention", attention)
    model = create_model(TINY, num_classes=3)
    model.eval()
    images = _images(2, (16, 16))
    with paddle.no_grad():
        plain = model(images).numpy()
    assert len(calls) == 6
    seen = []
    handle = model.blocks[0].attn.attn_drop.register_forward_post_hook(
        lambda layer, inputs, output: seen.append(inputs[0].shape))
    with paddle.no_grad():
        np.testing.assert_allclose(model(images).numpy(), plain, rtol=0, atol=1e-5)
    handle.remove()
    assert seen == [[2, 4, 17, 17]] and len(calls) == 11  # block 0 unfused
    model.train()
    model(images)
    assert len(kept) == 6
    dropping = create_model(TINY, num_classes=3, attn_drop_rate=0.1)
    dropping.train()
    dropping(images)
    assert len(kept) == 6


def test_a_second_derivative_through_the_kernels_is_refused_not_wrong(attention_kernel):
    """The kernels' gradients are first derivatives: a gradient of a gradient through them
    (`create_graph=True`) raises an error that says so, instead of returning one that lacks
    their terms. First derivatives with `create_graph=True` still work."""
    model = create_model(TINY, num_classes=3)
    model.train()
    images = _images(2, (16, 16))
    images.stop_gradient = False
    (d_images,) = paddle.grad(model(images).sum(), images, create_graph=True)
    assert d_images.shape == images.shape and not d_images.stop_gradient
    with pytest.raises(OSError, match="first derivatives only"):
        paddle.grad((d_images * d_images).sum(), model.blocks[0].mlp.fc1.weight)


@pytest.mark.parametrize("leading", [(5, 7), (128, 17)])
@pytest.mark.parametrize("frozen", ["nothing", "weight", "both", "input"])
def test_linear_gradient_on_cpu_is_a_linear_layers(frozen, leading, cpu_path, monkeypatch):
    """The model's Linear computes its CPU training forward and gradient itself
    (vit/kernels/drop_in.py; the fused kernels where built with MKL): Paddle's output, the
    float64 gradients of b + x W, and None for what does not learn; the larger batch's bias
    gradient is summed in parts on two threads."""
    from vit.kernels import Linear

    calls = _counting_calls(monkeypatch, ops, "linear")
    rng = np.random.default_rng(1)
    weight, bias = rng.standard_normal((48, 20)), rng.standard_normal(20)
    inputs, upstream = rng.standard_normal((*leading, 48)), rng.standard_normal((*leading, 20))
    out, paddles, gradients = _train_step_through(
        Linear(48, 20), paddle.nn.Linear(48, 20), weight, bias, inputs, upstream, frozen)

    np.testing.assert_allclose(out, paddles, rtol=0, atol=1e-5)
    rows = upstream.reshape(-1, 20)
    _assert_gradients(gradients, (upstream @ weight.T, inputs.reshape(-1, 48).T @ rows,
                                  rows.sum(0)), frozen)
    fused = cpu_path == "fused kernel" and build.mkl_library() is not None
    assert len(calls) == fused
