"""The training loss: class weights for imbalance, BCE for several labels per image, with hard
and soft targets, against PyTorch and scikit-learn as independent references."""

import numpy as np
import paddle
import pytest
import torch
from sklearn.utils.class_weight import compute_class_weight

from vit.data.mixing import smooth_targets
from vit.engine.losses import TrainingLoss, class_weights_for
from vit.errors import ConfigError

NAMES = ["a", "b", "c"]


def test_unweighted_loss_is_cross_entropy_for_one_hot_targets():
    logits = paddle.to_tensor([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3]])
    hard = paddle.nn.functional.cross_entropy(logits, paddle.to_tensor([[0], [2]]))
    soft = TrainingLoss()(logits, smooth_targets(paddle.to_tensor([0, 2]), 3, 0.0))
    assert abs(hard.item() - soft.item()) < 1e-6


def test_balanced_weights_are_scikit_learns_and_average_one_over_the_images():
    labels = np.array([0] * 90 + [1] * 9 + [2] * 1)
    weights = class_weights_for("balanced", labels, False, NAMES)
    np.testing.assert_allclose(weights, compute_class_weight("balanced", classes=np.arange(3),
                                                             y=labels), rtol=1e-6)
    assert abs(weights[labels].mean() - 1.0) < 1e-6
    assert class_weights_for("none", labels, False, NAMES) is None


def test_weighted_loss_with_hard_labels_weighs_each_image_by_its_class():
    logits = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    labels = np.array([0, 1, 2, 2])
    weights = np.array([0.5, 2.0, 4.0], dtype=np.float32)
    ours = TrainingLoss(class_weights=weights)(paddle.to_tensor(logits),
                                               smooth_targets(paddle.to_tensor(labels), 3, 0.0))
    per_image = torch.nn.functional.cross_entropy(torch.from_numpy(logits),
                                                  torch.from_numpy(labels), reduction="none")
    expected = (per_image * torch.from_numpy(weights)[labels]).mean()
    assert abs(ours.item() - expected.item()) < 1e-5


def test_soft_targets_are_weighted_by_their_expected_class_weight():
    logits = paddle.to_tensor([[1.0, 0.0, -1.0]])
    targets = smooth_targets(paddle.to_tensor([0]), 3, 0.3)  # 0.8, 0.1, 0.1
    weights = np.array([1.0, 2.0, 7.0], dtype=np.float32)
    ours = TrainingLoss(class_weights=weights)(logits, targets).item()
    cross_entropy = TrainingLoss()(logits, targets).item()
    assert abs(ours - cross_entropy * (0.8 * 1 + 0.1 * 2 + 0.1 * 7)) < 1e-5


def test_multilabel_loss_is_bce_with_positive_weights():
    rng = np.random.default_rng(1)
    logits = rng.normal(size=(5, 3)).astype(np.float32)
    labels = (rng.random((5, 3)) < 0.4).astype(np.int64)
    pos_weight = class_weights_for("balanced", labels, True, NAMES)
    negatives, positives = (labels == 0).sum(0), labels.sum(0)
    np.testing.assert_allclose(pos_weight, np.where(positives > 0, negatives / np.maximum(positives, 1), 1))
    ours = TrainingLoss(True, pos_weight)(paddle.to_tensor(logits),
                                          smooth_targets(paddle.to_tensor(labels), 3, 0.0))
    expected = torch.nn.BCEWithLogitsLoss(pos_weight=torch.from_numpy(pos_weight))(
        torch.from_numpy(logits), torch.from_numpy(labels.astype(np.float32)))
    assert abs(ours.item() - expected.item()) < 1e-5


def test_a_weight_list_of_the_wrong_length_is_refused_naming_the_classes():
    with pytest.raises(ConfigError, match=r"lists 2 weights for 3 classes \(a, b, c\)"):
        class_weights_for((1.0, 2.0), np.array([0, 1, 2]), False, NAMES)


def test_a_label_every_image_carries_keeps_weight_one():
    labels = np.array([[1, 0], [1, 1], [1, 0]])
    np.testing.assert_allclose(class_weights_for("balanced", labels, True, ["a", "b"]), [1.0, 2.0])
