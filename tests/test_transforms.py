"""Preprocessing pipelines, RandAugment, and the batch-level Mixup/CutMix/label smoothing."""

import random

import numpy as np
import paddle
import pytest
from PIL import Image

from vit.config import load_config
from vit.data.mixing import Mixing, mix_batch, smooth_targets
from vit.data.transforms import RandAugment, build_transforms, denormalize


def augment(*overrides):
    return load_config(None, list(overrides)).augment


def test_eval_pipeline_resizes_crops_and_normalises():
    image = Image.new("RGB", (40, 20), (255, 0, 127))
    pipeline = build_transforms(augment("augment.crop_pct=0.875"), 32, False, [0.5] * 3, [0.5] * 3)
    out = pipeline(image)
    assert out.shape == (3, 32, 32) and out.dtype == np.float32
    np.testing.assert_allclose(out[:, 5, 5], [1.0, -1.0, 127 / 127.5 - 1], atol=1e-6)
    back = denormalize(out, [0.5] * 3, [0.5] * 3)
    assert back.shape == (32, 32, 3) and back[5, 5].tolist() == [255, 0, 127]


def test_train_pipeline_is_random_and_reproducible_with_a_seed():
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (24, 24, 3), dtype=np.uint8))
    pipeline = build_transforms(augment("augment.random_resized_crop=true", "augment.hflip=0.5",
                                        "augment.rand_augment_n=2"), 16, True, [0.5] * 3, [0.5] * 3)
    random.seed(3)
    np.random.seed(3)
    first = pipeline(image)
    random.seed(3)
    np.random.seed(3)
    assert np.array_equal(first, pipeline(image))
    assert not np.array_equal(first, pipeline(image))


def test_crop_padding_shifts_the_image_by_at_most_the_padding():
    pixels = np.zeros((16, 16, 3), dtype=np.uint8)
    pixels[8, 8] = 255  # one white pixel on black
    pipeline = build_transforms(augment("augment.crop_padding=2"), 16, True, [0.0] * 3, [1.0] * 3)
    random.seed(0)
    np.random.seed(0)
    shifts = set()
    for _ in range(40):
        out = pipeline(Image.fromarray(pixels))
        assert out.shape == (3, 16, 16) and out.sum() == 3.0  # shifted, never cut off
        row, column = np.argwhere(out[0] == 1.0)[0]
        shifts.add((int(row) - 8, int(column) - 8))
    assert max(max(abs(a), abs(b)) for a, b in shifts) <= 2 and len(shifts) > 5


def test_rand_augment_keeps_size_and_mode():
    image = Image.new("RGB", (20, 20), (10, 200, 30))
    random.seed(0)
    for _ in range(30):
        out = RandAugment(2, 9)(image)
        assert out.size == (20, 20) and out.mode == "RGB"


def test_label_smoothing_targets():
    targets = smooth_targets(paddle.to_tensor([2]), 4, 0.1).numpy()
    np.testing.assert_allclose(targets, [[0.025, 0.025, 0.925, 0.025]], rtol=1e-6)


@pytest.mark.parametrize("kind", ["mixup", "cutmix"])
def test_mixing_blends_images_and_targets_by_the_same_weight(kind):
    images = paddle.to_tensor(np.stack([np.zeros((3, 8, 8)), np.ones((3, 8, 8))]).astype("float32"))
    labels = paddle.to_tensor([0, 1])
    mixing = Mixing(2, mixup_alpha=1.0 if kind == "mixup" else 0.0,
                    cutmix_alpha=1.0 if kind == "cutmix" else 0.0)
    mixed, targets = mix_batch(images, labels, mixing, np.random.default_rng(5))
    # image 0 (zeros) mixed with image 1 (ones): its mean is the share of image 1
    share_of_other = float(mixed[0].mean())
    np.testing.assert_allclose(targets.numpy()[0], [1 - share_of_other, share_of_other], atol=1e-6)
    np.testing.assert_allclose(targets.numpy().sum(1), [1, 1], atol=1e-6)
