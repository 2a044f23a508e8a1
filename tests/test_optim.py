"""Optimizers, schedules, weight-decay groups and gradient accumulation."""

import math

import numpy as np
import paddle
import pytest

from vit.config import load_config
from vit.engine.optim import build_optimizer, build_scheduler
from vit.models import create_model


def lrs(scheduler, steps):
    values = []
    for _ in range(steps):
        values.append(scheduler.get_lr())
        scheduler.step()
    return np.asarray(values)


def test_cosine_schedule_with_linear_warmup():
    optim = load_config(None, ["optim.lr=0.1", "optim.warmup_steps=10", "optim.min_lr=0.0"]).optim
    values = lrs(build_scheduler(optim, epochs=2, steps_per_epoch=30), 60)
    np.testing.assert_allclose(values[:10], np.arange(10) / 10 * 0.1, atol=1e-12)
    expected = [0.5 * 0.1 * (1 + math.cos(math.pi * k / 50)) for k in range(50)]
    np.testing.assert_allclose(values[10:], expected, rtol=1e-6)


def test_linear_and_step_schedules():
    optim = load_config(None, ["optim.lr=1.0", "optim.schedule=linear", "optim.min_lr=0.0"]).optim
    values = lrs(build_scheduler(optim, epochs=1, steps_per_epoch=10), 10)
    np.testing.assert_allclose(values, 1.0 - np.arange(10) / 10, atol=1e-9)
    optim = load_config(None, ["optim.lr=1.0", "optim.schedule=step", "optim.step_epochs=1",
                               "optim.step_gamma=0.5"]).optim
    values = lrs(build_scheduler(optim, epochs=3, steps_per_epoch=4), 12)
    np.testing.assert_allclose(values, [1.0] * 4 + [0.5] * 4 + [0.25] * 4)


def test_the_configs_optimizer_and_schedule_names_are_exactly_those_built():
    """The names live in the config's schema (its choices); the engine builds each of them."""
    from vit.config.schema import OPTIMIZERS, SCHEDULES
    from vit.engine import optim

    assert tuple(optim.OPTIMIZERS) == OPTIMIZERS and tuple(optim.DECAYS) == SCHEDULES


@pytest.mark.parametrize("name,cls,expected", [
    ("adamw", paddle.optimizer.AdamW, lambda w: w * (1 - 0.1 * 0.5)),  # decoupled decay
    ("sgd", paddle.optimizer.Momentum, lambda w: w * (1 - 0.1 * 0.5)),  # L2 gradient 0.5 w
    # Adam normalises the L2 gradient g = 0.5 w to lr * g / (|g| + epsilon) on its first step
    ("adam", paddle.optimizer.Adam, lambda w: w - 0.1 * 0.5 * w / (np.abs(0.5 * w) + 1e-8)),
])
def test_optimizers_decay_weights_but_not_biases_norms_or_embeddings(name, cls, expected):
    config = load_config(None, [f"optim.name={name}", "optim.grad_clip=1.0", "optim.lr=0.1",
                                "optim.weight_decay=0.5", "optim.schedule=constant"]).optim
    model = create_model("ViT_tiny_patch4_16", num_classes=3)
    optimizer = build_optimizer(config, model, build_scheduler(config, 1, 10))
    assert isinstance(optimizer, cls)
    assert isinstance(optimizer._grad_clip, paddle.nn.ClipGradByGlobalNorm)
    before = {n: p.numpy().copy() for n, p in model.named_parameters()}
    for param in model.parameters():  # zero gradients: only weight decay moves anything
        param.grad = paddle.zeros_like(param)
    optimizer.step()
    after = {n: p.numpy() for n, p in model.named_parameters()}
    for key in ("blocks.0.attn.qkv.weight", "head.weight", "patch_embed.proj.weight"):
        step = after[key] - before[key]  # Adam's float32 bias corrections: within 0.2 %
        np.testing.assert_allclose(step, expected(before[key]) - before[key], rtol=2e-3,
                                   atol=1e-7, err_msg=key)
    for key in ("pos_embed", "cls_token", "blocks.0.norm1.weight", "blocks.0.attn.qkv.bias"):
        np.testing.assert_array_equal(after[key], before[key], err_msg=key)


def test_gradient_accumulation_equals_the_larger_batch():
    from vit.data.builder import prepare_data
    from vit.data.mixing import Mixing
    from vit.data.loaders import build_loader
    from vit.engine.loop import LoopState, StepControl, train_one_epoch

    # 128 training images: four full batches of 32, or eight of 16 accumulated in pairs. SGD,
    # whose step is linear in the gradient: Adam divides by the gradient's own size, which
    # turns float summation order on near-zero gradients into differences of up to lr per step
    config = load_config(None, ["data.train_fraction=0.10175", "optim.name=sgd",
                                "optim.lr=0.05"])
    data = prepare_data(config, 16)
    assert len(data.train) == 128
    results = []
    for batch, accum in ((32, 1), (16, 2)):
        paddle.seed(0)
        with paddle.utils.unique_name.guard():
            model = create_model("ViT_tiny_patch4_16", num_classes=10)
        initial = {n: p.numpy() for n, p in model.named_parameters()}
        loader = build_loader(data.train, batch, True, seed=0)
        scheduler = build_scheduler(config.optim, 1, math.ceil(len(loader) / accum))
        optimizer = build_optimizer(config.optim, model, scheduler)
        state = LoopState()
        train_one_epoch(model, loader, optimizer, scheduler, state,
                        StepControl(seed=0, mixing=Mixing(10), accum_steps=accum,
                                    show_progress=False), 1)
        results.append((state.global_step, {n: p.numpy() for n, p in model.named_parameters()}))
    (steps_a, big), (steps_b, accumulated) = results
    assert steps_a == steps_b == 4
    assert np.abs(big["head.weight"] - initial["head.weight"]).max() > 1e-3  # it did learn
    for name in big:
        # equal up to float summation order
        np.testing.assert_allclose(accumulated[name], big[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_layer_decay_scales_each_parameters_learning_rate_by_its_depth():
    """BEiT's and PaddleClas's rule: with L blocks, block i learns at lr x decay^(L - i), the
    embeddings at decay^(L + 1), the head at lr; checked on the update of one SGD step."""
    config = load_config(None, ["optim.name=sgd", "optim.momentum=0.0", "optim.weight_decay=0",
                                "optim.lr=0.5", "optim.layer_decay=0.5"])
    paddle.seed(0)
    model = create_model("ViT_tiny_patch4_16", num_classes=10)  # 6 blocks
    scheduler = build_scheduler(config.optim, 1, 1)
    optimizer = build_optimizer(config.optim, model, scheduler)
    before = {n: p.numpy() for n, p in model.named_parameters()}
    model(paddle.rand([4, 3, 16, 16])).square().sum().backward()  # steps well above rounding
    grads = {n: p.grad.numpy() for n, p in model.named_parameters()}
    optimizer.step()
    expected = {"pos_embed": 0.5 ** 7, "patch_embed.proj.weight": 0.5 ** 7,
                "blocks.0.attn.qkv.weight": 0.5 ** 6, "blocks.5.mlp.fc2.weight": 0.5 ** 1,
                "norm.weight": 1.0, "head.weight": 1.0}
    for name, scale in expected.items():
        step = before[name] - dict(model.named_parameters())[name].numpy()
        np.testing.assert_allclose(step, 0.5 * scale * grads[name], rtol=1e-3, atol=1e-7,
                                   err_msg=name)


def test_a_frozen_backbone_changes_only_the_head():
    from vit.engine.finetune import HeadTraining, freeze_backbone

    config = load_config(None, ["optim.lr=0.01"])
    paddle.seed(0)
    model = create_model("ViT_tiny_patch4_16", num_classes=10, drop_path_rate=0.1)
    assert freeze_backbone(model) == 64 * 10 + 10
    optimizer = build_optimizer(config.optim, model, build_scheduler(config.optim, 1, 1))
    before = {n: p.numpy() for n, p in model.named_parameters()}
    training = HeadTraining(model, on_features=False)
    training.train()
    assert model.head.training and not model.blocks[0].training  # no stochastic depth
    paddle.nn.functional.cross_entropy(training(paddle.rand([8, 3, 16, 16])),
                                       paddle.arange(8).astype("int64") % 10).backward()
    optimizer.step()
    changed = {n for n, p in model.named_parameters() if not np.array_equal(p.numpy(), before[n])}
    assert changed == {"head.weight", "head.bias"}
