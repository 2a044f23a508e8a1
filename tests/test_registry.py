"""Every registered model, as timm tests its registry: a forward pass gives [B, num_classes] with
finite values and a backward pass reaches every parameter, at a small input (a 2x2 patch grid)
for all of them and at the real input size for the Base, S and Ti models; the names that mean
different models in PaddleClas and timm each keep their own."""

import numpy as np
import paddle
import pytest

from vit.models import VARIANTS, count_parameters_by_name, create_model, list_models


def _forward_backward(model, batch: int, size, num_classes: int):
    model.train()
    images = paddle.to_tensor(np.random.default_rng(0).standard_normal(
        (batch, 3) + size).astype("float32"))
    logits = model(images)
    assert logits.shape == [batch, num_classes]
    assert np.isfinite(logits.numpy()).all()
    loss = paddle.nn.functional.cross_entropy(logits, paddle.arange(batch) % num_classes)
    loss.backward()
    without = [name for name, param in model.named_parameters()
               if param.grad is None or not paddle.abs(param.grad).sum().item() > 0]
    assert not without, without


@pytest.mark.parametrize("name", list_models())
def test_every_model_trains_on_a_small_input(name):
    patch = VARIANTS[name]["patch_size"]
    size = (2 * patch, 2 * patch)
    with paddle.utils.unique_name.guard():
        model = create_model(name, img_size=size, num_classes=5)
    _forward_backward(model, 2, size, 5)


@pytest.mark.parametrize("name", list_models("base") + list_models("_Ti_") + list_models("_S_"))
def test_base_s_and_ti_models_train_at_their_own_size(name):
    size = (VARIANTS[name]["img_size"],) * 2
    with paddle.utils.unique_name.guard():
        model = create_model(name, num_classes=3)
    _forward_backward(model, 1, size, 3)


@pytest.mark.parametrize("name,timm_name,parameters,width,heads", [
    ("ViT_Ti_patch16_224", "vit_tiny_patch16_224", 5_717_416, 192, 3),
    ("ViT_S_patch16_224", "vit_small_patch16_224", 22_050_664, 384, 6),
])
def test_vit_ti_and_s_are_timms_and_deits_to_the_parameter(name, timm_name, parameters, width,
                                                           heads):
    """timm's counts for its models (1000 classes); 12 blocks, MLP 4x, 64 wide per head, q/k/v
    bias and LayerNorm epsilon 1e-6 as timm builds them."""
    assert count_parameters_by_name(name) == parameters, timm_name
    assert VARIANTS[name] == dict(img_size=224, patch_size=16, embed_dim=width, depth=12,
                                  num_heads=heads, mlp_ratio=4, qkv_bias=True, epsilon=1e-6)


def test_paddleclas_small_and_the_cpu_sized_tiny_models_keep_their_names():
    """`ViT_small_patch16_224` stays PaddleClas's 768-wide model (its .pdparams load by name), and
    `tiny` stays the CPU-sized models; DeiT's and timm's smaller ViTs are `Ti` and `S`."""
    assert count_parameters_by_name("ViT_small_patch16_224") == 48_754_408
    assert VARIANTS["ViT_small_patch16_224"]["embed_dim"] == 768
    assert list_models("tiny") == ["ViT_tiny_patch4_16", "ViT_tiny_patch4_32"]
    assert list_models("_Ti_") == ["ViT_Ti_patch16_224"]
    assert list_models("_S_") == ["ViT_S_patch16_224"]
