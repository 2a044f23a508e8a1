"""Gradient checkpointing (`train.recompute`, VisionTransformer.set_grad_checkpointing): each
block recomputes its activations in the backward pass with Paddle's recompute, which gives the
loss and gradients of a step without it, dropout and drop path included, and refuses a model
without blocks in one line."""

import json

import numpy as np
import paddle
import pytest
from paddle.distributed.fleet.utils import recompute

import vit.models.vision_transformer as vision_transformer
from conftest import assert_one_line_error, run_tool
from vit.models import create_model

SHORT_RUN = ["-o", "data.train_fraction=0.1", "-o", "data.batch_size=32", "-o", "train.epochs=1",
             "-o", "optim.warmup_epochs=0"]


def training_step(checkpointing: bool, attn_drop_rate: float):
    """Loss and every parameter's gradient of one step of a small ViT in train mode, with every
    kind of randomness on, from the same seeds."""
    paddle.seed(0)
    model = create_model("ViT_tiny_patch4_16", num_classes=10, drop_rate=0.1,
                         attn_drop_rate=attn_drop_rate, drop_path_rate=0.3)
    model.set_grad_checkpointing(checkpointing)
    images = paddle.to_tensor(np.random.RandomState(0).randn(8, 3, 16, 16).astype("float32"))
    paddle.seed(1)
    loss = paddle.nn.functional.cross_entropy(model(images), paddle.arange(8) % 10)
    loss.backward()
    return float(loss), {name: p.grad.numpy() for name, p in model.named_parameters()}


def largest_difference(grads, reference) -> float:
    """The largest gradient difference, as a share of that parameter's largest gradient."""
    return max(float(np.abs(grads[name] - g).max() / np.abs(g).max())
               for name, g in reference.items())


# attention dropout on: Paddle's attention ops; off: vit's fused attention kernel in training
@pytest.mark.parametrize("attn_drop_rate", [0.1, 0.0])
def test_recompute_gives_the_same_loss_and_gradients(attn_drop_rate, monkeypatch):
    loss, grads = training_step(False, attn_drop_rate)
    recomputed_loss, recomputed = training_step(True, attn_drop_rate)
    # float32 rounding (epsilon 1.2e-7) at most; here they come out bit for bit the same, since
    # the recomputation runs the very kernels the forward pass ran
    assert abs(recomputed_loss - loss) <= 1e-6
    assert largest_difference(recomputed, grads) <= 1e-6
    # the replayed random state is what makes it so: drawing dropout and drop path afresh in
    # the backward pass gives other gradients
    monkeypatch.setattr(vision_transformer, "recompute", lambda block, x, **options: recompute(
        block, x, **{**options, "preserve_rng_state": False}))
    _, redrawn = training_step(True, attn_drop_rate)
    assert largest_difference(redrawn, grads) > 1e-2


def test_only_training_with_gradients_recomputes_and_the_layer_tree_is_unchanged(monkeypatch):
    calls = []
    monkeypatch.setattr(vision_transformer, "recompute", lambda block, x, **options: (
        calls.append(block), recompute(block, x, **options))[1])
    model = create_model("ViT_tiny_patch4_16", num_classes=10)
    layers = [name for name, _ in model.named_sublayers()]
    model.set_grad_checkpointing(True)
    assert [name for name, _ in model.named_sublayers()] == layers
    images = paddle.randn([2, 3, 16, 16])
    model(images).sum().backward()
    assert len(calls) == len(model.blocks)
    with paddle.no_grad():
        model(images)
    model.eval()
    model(images)
    tokens = model.forward_intermediates(images, blocks=2)
    assert len(calls) == len(model.blocks) and len(tokens) == 2


def test_train_tool_with_recompute_trains_the_same_first_epoch(tmp_path):
    losses = {}
    for recompute_on in ("false", "true"):
        run = tmp_path / f"recompute_{recompute_on}"
        result = run_tool("train", *SHORT_RUN, "-o", f"train.recompute={recompute_on}",
                          "-o", f"output.dir={tmp_path}", "-o", f"output.run_name={run.name}")
        assert result.returncode == 0, result.stderr
        losses[recompute_on] = json.loads((run / "metrics.json").read_text())["history"][0][
            "train_loss"]
    assert "activations are recomputed" in (tmp_path / "recompute_true" / "train.log").read_text()
    assert abs(losses["true"] - losses["false"]) <= 1e-5, losses


def test_recompute_is_refused_for_a_cnn_baseline_in_one_line(tmp_path):
    result = run_tool("train", *SHORT_RUN, "-o", "model.name=ResNet20",
                      "-o", "train.recompute=true", "-o", f"output.dir={tmp_path}")
    assert_one_line_error(result, "train.recompute", "ResNet20", "-o train.recompute=false")
