"""The training loss, by task: softmax cross-entropy over classes (multiclass) or one binary
cross-entropy per label (multilabel), optionally weighted by `train.class_weights`.

Both take soft targets [B, K] (label smoothing, Mixup and CutMix make them; mixing.py).
- multiclass: an image's weight is its target's expected class weight, sum_k target_k w_k (the
  class weight itself for a hard label), and the loss is the batch mean of weight x
  cross-entropy. `balanced` weights are scikit-learn's (n_images / (classes x class count)):
  their mean over the training images is 1, so the loss keeps its scale.
- multilabel: the weights are BCE's positive weights (PyTorch's and Paddle's `pos_weight`): a
  label's positives count w times in its loss; `balanced` is each label's negatives /
  positives in the training split.
"""

from typing import Optional

import numpy as np
import paddle
import paddle.nn.functional as F

from ..errors import ConfigError, param


def class_weights_for(setting, labels: np.ndarray, multilabel: bool,
                      names) -> Optional[np.ndarray]:
    """The weights `train.class_weights` asks for, from the training split's `labels` ([N], or
    [N, K] 0/1 for multilabel) and the class `names`; None for `none`.

    Raises:
        ConfigError: a list whose length is not the number of classes.
    """
    if isinstance(setting, str):
        if setting == "none":
            return None
        return _balanced_pos_weights(labels) if multilabel else _balanced_weights(labels, len(names))
    if len(setting) != len(names):
        raise ConfigError(f"train.class_weights lists {len(setting)} weights for "
                          f"{len(names)} classes ({', '.join(names[:5])}"
                          f"{'...' if len(names) > 5 else ''})",
                          f"give one weight per class, or {param('train.class_weights', 'balanced')}")
    return np.asarray(setting, dtype=np.float32)


def _balanced_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    counts = np.bincount(labels, minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.ones(num_classes)  # a class without training images never is a target
    weights[present] = len(labels) / (present.sum() * counts[present])
    return weights.astype(np.float32)


def _balanced_pos_weights(labels: np.ndarray) -> np.ndarray:
    positives = labels.sum(axis=0).astype(np.float64)
    negatives = len(labels) - positives
    # a label every image (or none) carries has nothing to balance: weight 1
    balanced = (positives > 0) & (negatives > 0)
    return np.where(balanced, negatives / np.maximum(positives, 1), 1.0).astype(np.float32)


class TrainingLoss:
    """`loss(logits [B, K], targets [B, K]) -> scalar`, for the task and the class weights."""

    def __init__(self, multilabel: bool = False, class_weights: Optional[np.ndarray] = None):
        self.multilabel = multilabel
        self.class_weights = class_weights
        self._weights = (None if class_weights is None
                         else paddle.to_tensor(np.asarray(class_weights, dtype=np.float32)))

    def __call__(self, logits, targets):
        if self.multilabel:
            return F.binary_cross_entropy_with_logits(logits, targets, pos_weight=self._weights)
        per_image = -(targets * F.log_softmax(logits, axis=-1)).sum(axis=-1)
        if self._weights is not None:
            per_image = per_image * (targets * self._weights).sum(axis=-1)
        return per_image.mean()
