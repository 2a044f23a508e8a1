"""Batch-level regularisation: label smoothing, Mixup (Zhang et al. 2018), CutMix (Yun et al. 2019).

They turn labels (class indices [B], or 0/1 label vectors [B, K]) into soft targets [B, K],
which the training loss (vit/engine/losses.py) takes. Randomness
comes from the `numpy.random.Generator` passed in, which the training loop seeds afresh for every
batch from (seed, epoch, batch), so a resumed run mixes exactly as an uninterrupted one.
"""

from dataclasses import dataclass

import numpy as np
import paddle
import paddle.nn.functional as F


@dataclass(frozen=True)
class Mixing:
    """What to do to each training batch (from the `augment` config)."""

    num_classes: int
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    mix_prob: float = 1.0
    label_smoothing: float = 0.0

    @property
    def mixes(self) -> bool:
        return self.mixup_alpha > 0 or self.cutmix_alpha > 0


def smooth_targets(labels, num_classes: int, smoothing: float):
    """One-hot (or, for 0/1 label vectors [B, K], multi-hot) targets with `smoothing` spread
    evenly over all classes, float32 [B, K] (timm's on/off values for both)."""
    if labels.ndim == 2:
        hot = labels.astype("float32")
    else:
        hot = F.one_hot(labels.astype("int64"), num_classes).astype("float32")
    return hot * (1.0 - smoothing) + smoothing / num_classes


def mix_batch(images, labels, mixing: Mixing, rng: np.random.Generator):
    """Return (images, soft targets) for one batch.

    With probability `mix_prob` the batch is mixed with itself reversed: Mixup blends whole
    images, CutMix pastes a box whose area sets the mixing weight; when both are on, each batch
    uses one of them with equal chance.
    """
    targets = smooth_targets(labels, mixing.num_classes, mixing.label_smoothing)
    if not mixing.mixes or rng.random() >= mixing.mix_prob:
        return images, targets
    use_cutmix = mixing.cutmix_alpha > 0 and (mixing.mixup_alpha <= 0 or rng.random() < 0.5)
    alpha = mixing.cutmix_alpha if use_cutmix else mixing.mixup_alpha
    lam = float(rng.beta(alpha, alpha))
    flipped = images.flip(axis=[0])
    if use_cutmix:
        height, width = images.shape[-2:]
        top, bottom, left, right = _cutmix_box(height, width, lam, rng)
        mask = np.ones((1, 1, height, width), dtype="float32")
        mask[..., top:bottom, left:right] = 0.0
        images = images * paddle.to_tensor(mask) + flipped * paddle.to_tensor(1.0 - mask)
        lam = 1.0 - (bottom - top) * (right - left) / float(height * width)
    else:
        images = images * lam + flipped * (1.0 - lam)
    return images, targets * lam + targets.flip(axis=[0]) * (1.0 - lam)


def _cutmix_box(height: int, width: int, lam: float, rng: np.random.Generator):
    """A box of area (1 - lam) of the image, centred uniformly, clipped to the image."""
    ratio = np.sqrt(1.0 - lam)
    cut_h, cut_w = int(height * ratio), int(width * ratio)
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    top, bottom = np.clip([cy - cut_h // 2, cy + cut_h // 2], 0, height)
    left, right = np.clip([cx - cut_w // 2, cx + cut_w // 2], 0, width)
    return int(top), int(bottom), int(left), int(right)

