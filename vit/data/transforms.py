"""Preprocessing from the `augment` config, built on `paddle.vision.transforms`.

Train and eval pipelines start from an RGB `PIL.Image` and end with a float32 [C, H, W] array
normalised by mean/std (ViT's 0.5/0.5 by default). Paddle has no RandAugment, so it is here, on
Pillow's operations (Cubuk et al., 2020; magnitudes on timm's and PaddleClas's 0-10 scale).
Batch-level Mixup/CutMix and label smoothing live in `mixing.py`.
"""

import random
from typing import Sequence

import numpy as np
import paddle.vision.transforms as T
from PIL import Image, ImageEnhance, ImageOps

from ..config import AugmentConfig


def build_transforms(augment: AugmentConfig, image_size: int, train: bool,
                     mean: Sequence[float], std: Sequence[float]):
    """The train or eval pipeline for images of side `image_size`.

    Args:
        augment: the `augment` config section.
        image_size: side of the model's square input.
        train: build the training pipeline (random crops, flips, RandAugment).
        mean, std: per-channel statistics in [0, 1] units (resolved from 'dataset' already).
    """
    if not train:
        return build_eval_transform(image_size, mean, std, augment.interpolation,
                                    augment.crop_pct)
    interpolation = augment.interpolation
    if augment.random_resized_crop:
        steps = [T.RandomResizedCrop(image_size, scale=tuple(augment.crop_scale),
                                     interpolation=interpolation)]
    else:
        steps = [T.Resize((image_size, image_size), interpolation=interpolation)]
    if augment.crop_padding > 0:
        steps.append(T.RandomCrop(image_size, padding=augment.crop_padding))
    if augment.hflip > 0:
        steps.append(T.RandomHorizontalFlip(augment.hflip))
    if augment.rand_augment_n > 0:
        steps.append(RandAugment(augment.rand_augment_n, augment.rand_augment_m))
    return T.Compose(steps + normalize_steps(mean, std))


def build_eval_transform(image_size: int, mean: Sequence[float], std: Sequence[float],
                         interpolation: str = "bilinear", crop_pct: float = 1.0):
    """The evaluation pipeline from plain values (a checkpoint's record needs no config):
    resize to image_size / crop_pct, center-crop image_size, normalise."""
    resize_to = int(round(image_size / crop_pct))
    steps = [T.Resize((resize_to, resize_to), interpolation=interpolation)]
    if resize_to != image_size:
        steps.append(T.CenterCrop(image_size))
    return T.Compose(steps + normalize_steps(mean, std))


def normalize_steps(mean: Sequence[float], std: Sequence[float]):
    """HWC uint8 -> CHW float32 normalised: numpy throughout (faster than ToTensor in workers)."""
    mean, std = _three(mean), _three(std)
    return [T.Transpose(), T.Normalize([m * 255 for m in mean], [s * 255 for s in std],
                                       data_format="CHW")]


def _three(values: Sequence[float]):
    values = list(values)
    return values * 3 if len(values) == 1 else values


def denormalize(images: np.ndarray, mean, std) -> np.ndarray:
    """Undo normalisation for display: float [.., C, H, W] -> uint8 [.., H, W, C]."""
    mean = np.asarray(_three(mean), dtype=np.float32).reshape(3, 1, 1)
    std = np.asarray(_three(std), dtype=np.float32).reshape(3, 1, 1)
    pixels = (np.asarray(images) * std + mean) * 255.0
    return np.clip(np.round(np.moveaxis(pixels, -3, -1)), 0, 255).astype(np.uint8)


# --- RandAugment ---------------------------------------------------------------------------------
_MAX_LEVEL = 10.0
_FILL = (128, 128, 128)


def _signed(value):
    return value if random.random() < 0.5 else -value


def _shear(axis):
    def apply(image, level):
        shear = _signed(level / _MAX_LEVEL * 0.3)
        matrix = (1, shear, 0, 0, 1, 0) if axis == "x" else (1, 0, 0, shear, 1, 0)
        return image.transform(image.size, Image.AFFINE, matrix, fillcolor=_FILL)
    return apply


def _translate(axis):
    def apply(image, level):
        fraction = _signed(level / _MAX_LEVEL * 0.45)
        dx = fraction * image.size[0] if axis == "x" else 0
        dy = fraction * image.size[1] if axis == "y" else 0
        return image.transform(image.size, Image.AFFINE, (1, 0, dx, 0, 1, dy), fillcolor=_FILL)
    return apply


def _enhance(enhancer):
    def apply(image, level):
        return enhancer(image).enhance(1.0 + _signed(level / _MAX_LEVEL * 0.9))
    return apply


RAND_AUGMENT_OPS = {
    "Identity": lambda image, level: image,
    "AutoContrast": lambda image, level: ImageOps.autocontrast(image),
    "Equalize": lambda image, level: ImageOps.equalize(image),
    "Rotate": lambda image, level: image.rotate(_signed(level / _MAX_LEVEL * 30), fillcolor=_FILL),
    "Solarize": lambda image, level: ImageOps.solarize(image, 256 - int(level / _MAX_LEVEL * 256)),
    "Posterize": lambda image, level: ImageOps.posterize(image, max(1, 8 - int(level / _MAX_LEVEL * 4))),
    "Color": _enhance(ImageEnhance.Color),
    "Contrast": _enhance(ImageEnhance.Contrast),
    "Brightness": _enhance(ImageEnhance.Brightness),
    "Sharpness": _enhance(ImageEnhance.Sharpness),
    "ShearX": _shear("x"),
    "ShearY": _shear("y"),
    "TranslateX": _translate("x"),
    "TranslateY": _translate("y"),
}


class RandAugment:
    """Apply `num_ops` operations drawn uniformly from `RAND_AUGMENT_OPS`, each at `magnitude`
    (0-10), to an RGB PIL image. Randomness comes from Python's `random`, which the dataset
    seeds for each image from (seed, epoch, image) before its transform runs."""

    def __init__(self, num_ops: int = 2, magnitude: float = 9):
        self.num_ops = num_ops
        self.magnitude = float(min(max(magnitude, 0), _MAX_LEVEL))
        self.names = list(RAND_AUGMENT_OPS)

    def __call__(self, image: Image.Image) -> Image.Image:
        for name in random.choices(self.names, k=self.num_ops):
            image = RAND_AUGMENT_OPS[name](image, self.magnitude)
        return image

    def __repr__(self):
        return f"RandAugment(num_ops={self.num_ops}, magnitude={self.magnitude})"
