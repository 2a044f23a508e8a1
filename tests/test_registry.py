"""Every registered model, as timm tests its registry: a forward pass gives [B, num_classes] with
finite values and a backward pass reaches every parameter, at a small input (a 2x2 patch grid)
for all of them and at the real input size for the Base models."""

import numpy as np
import paddle
import pytest

from vit.models import VARIANTS, create_model, list_models


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


@pytest.mark.parametrize("name", list_models("base"))
def test_base_models_train_at_their_own_size(name):
    size = (VARIANTS[name]["img_size"],) * 2
    with paddle.utils.unique_name.guard():
        model = create_model(name, num_classes=3)
    _forward_backward(model, 1, size, 3)
