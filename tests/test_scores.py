"""Evaluation figures against scikit-learn: balanced accuracy and per-class recall (multiclass);
mAP, the thresholds chosen for F1, exact match and Hamming loss (multilabel)."""

import numpy as np
import pytest
from sklearn.metrics import (accuracy_score, average_precision_score, balanced_accuracy_score,
                             f1_score, hamming_loss, recall_score)

from vit.engine.run_log import RunLog
from vit.engine.scores import (DEFAULT_THRESHOLD, choose_thresholds, class_score_sums,
                               class_scores, label_scores, sigmoid)
from vit.errors import ConfigError


def _imbalanced_predictions(seed=0):
    rng = np.random.default_rng(seed)
    labels = np.concatenate([np.zeros(80, int), np.ones(15, int), np.full(5, 2)])
    logits = rng.normal(size=(100, 4))  # class 3 never occurs
    logits[np.arange(100), labels] += rng.normal(1.0, 1.0, 100)
    return logits, labels


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")  # class 3, on purpose
def test_balanced_accuracy_and_recall_are_scikit_learns_over_the_classes_present():
    logits, labels = _imbalanced_predictions()
    scores = class_scores(class_score_sums(logits, labels, 4), 4)
    predicted = logits.argmax(1)
    assert abs(scores["balanced_accuracy"] - balanced_accuracy_score(labels, predicted)) < 1e-12
    np.testing.assert_allclose(scores["recall"][:3], recall_score(labels, predicted, labels=[0, 1, 2],
                                                                  average=None))
    assert scores["recall"][3] is None
    assert abs(scores["top1"] - accuracy_score(labels, predicted)) < 1e-12


def test_sums_of_two_shares_give_the_figures_of_the_whole():
    logits, labels = _imbalanced_predictions(1)
    halves = class_score_sums(logits[:37], labels[:37], 4) + class_score_sums(logits[37:], labels[37:], 4)
    whole, added = class_scores(class_score_sums(logits, labels, 4), 4), class_scores(halves, 4)
    assert abs(added.pop("loss") - whole.pop("loss")) < 1e-12  # float sums, in another order
    assert added == whole


def _labelled(seed=2, images=200, labels=5):
    rng = np.random.default_rng(seed)
    truth = (rng.random((images, labels)) < 0.3).astype(np.int64)
    truth[:, 4] = 0  # a label with no positive
    logits = rng.normal(size=truth.shape) + 2.0 * truth
    return logits, truth


def test_multilabel_figures_are_scikit_learns():
    logits, truth = _labelled()
    scores = label_scores(logits, truth, thresholds=[0.5] * 5)
    probabilities = sigmoid(logits)
    decisions = (probabilities >= 0.5).astype(int)
    expected_map = np.mean([average_precision_score(truth[:, k], probabilities[:, k]) for k in range(4)])
    assert abs(scores["map"] - expected_map) < 1e-12  # the label without a positive is left out
    assert scores["average_precision"][4] is None
    assert abs(scores["exact_match"] - accuracy_score(truth, decisions)) < 1e-12
    assert abs(scores["hamming_loss"] - hamming_loss(truth, decisions)) < 1e-12
    np.testing.assert_allclose(scores["f1"], f1_score(truth, decisions, average=None, zero_division=0))


def test_each_chosen_threshold_gives_its_labels_best_f1():
    logits, truth = _labelled(3)
    probabilities = sigmoid(logits)
    chosen = choose_thresholds(probabilities, truth)
    assert chosen[4] == DEFAULT_THRESHOLD
    for k in range(4):
        best = max(f1_score(truth[:, k], probabilities[:, k] >= cut) for cut in probabilities[:, k])
        assert abs(f1_score(truth[:, k], probabilities[:, k] >= chosen[k]) - best) < 1e-12
    assert label_scores(logits, truth)["thresholds"] == [round(float(t), 6) for t in chosen]


def test_an_empty_split_scores_zero_instead_of_failing():
    scores = label_scores(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64))
    assert scores["map"] == scores["exact_match"] == 0 and scores["num_samples"] == 0
    assert scores["thresholds"] == [DEFAULT_THRESHOLD] * 3
    given = label_scores(np.zeros((0, 3)), np.zeros((0, 3), dtype=np.int64), thresholds=())
    assert given["thresholds"] == [DEFAULT_THRESHOLD] * 3  # empty: 0.5 each, never chosen


def test_a_resumed_run_keeps_the_figure_that_picked_its_best_epoch():
    started = {"history": [], "steps": [], "best_epoch": None, "best_by": "val_top1"}
    assert RunLog(None, metrics=dict(started)).metrics["best_by"] == "val_top1"
    with pytest.raises(ConfigError, match="picked its best epoch by val_top1"):
        RunLog(None, metrics=dict(started), best_by="val_balanced_accuracy")
