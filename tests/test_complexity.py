"""FLOP counts (multiply-adds) against counts made by hand."""

import pytest

from vit.models import count_flops, create_model


def hand_count(img, patch, dim, depth, hidden, classes, channels=3, batch=1):
    grid = (img // patch) ** 2
    tokens = grid + 1
    patch_embed = batch * grid * dim * channels * patch * patch
    linear = batch * depth * tokens * (dim * 3 * dim + dim * dim + 2 * dim * hidden)
    linear += batch * dim * classes
    attention = batch * depth * 2 * tokens * tokens * dim
    return patch_embed, linear, attention


def test_tiny_model_flops_equal_the_hand_count():
    model = create_model("ViT_tiny_patch4_16", num_classes=10)
    flops = count_flops(model, (2, 3, 16, 16))
    assert (flops.patch_embed, flops.linear, flops.attention) == hand_count(
        16, 4, 64, 6, 128, 10, batch=2)
    assert flops.total == sum(hand_count(16, 4, 64, 6, 128, 10, batch=2))


@pytest.mark.parametrize("name,img,patch", [("ViT_base_patch16_384", 384, 16),
                                            ("ViT_base_patch32_224", 224, 32)])
def test_vit_base_flops_equal_the_hand_count(name, img, patch):
    flops = count_flops(create_model(name), (1, 3, img, img))
    assert (flops.patch_embed, flops.linear, flops.attention) == hand_count(img, patch, 768, 12, 3072, 1000)


def test_vit_b16_384_is_the_published_55_gflops():
    flops = count_flops(create_model("ViT_base_patch16_384"), (1, 3, 384, 384))
    assert round(flops.total / 1e9, 1) == 55.5
    assert "attention matmuls" in flops.format()
