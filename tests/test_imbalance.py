"""Imbalanced classes end to end: the digits with three classes cut to a tenth in training
train with class weights and with the class-balanced sampler, on images and on a frozen
backbone's cached features; balanced accuracy is reported and can pick the best checkpoint;
a weight list that does not fit the classes is one line."""

import json

from conftest import QUICK_TRAINING, assert_one_line_error, run_tool

CUT = ["-o", "data.cut_classes=[3,5,8]", "-o", "train.epochs=2"]


def _train(tmp_path, name, *extra):
    return run_tool("train", *QUICK_TRAINING, *CUT, *extra, "-o", f"output.dir={tmp_path}",
                    "-o", f"output.run_name={name}")


def test_class_weights_and_the_balanced_sampler_train_and_report_balanced_accuracy(tmp_path):
    result = _train(tmp_path, "both", "-o", "train.class_weights=balanced",
                    "-o", "data.sampler=balanced", "-o", "train.select_best_by=balanced_accuracy")
    assert result.returncode == 0, result.stderr
    assert "imbalanced: the largest class has" in result.stderr  # the data report's line
    assert "class weights: 0 " in result.stderr
    assert "balanced accuracy" in result.stdout
    metrics = json.loads((tmp_path / "both" / "metrics.json").read_text())
    assert metrics["best_by"] == "val_balanced_accuracy"
    best = max(metrics["history"], key=lambda r: r["val_balanced_accuracy"])
    assert metrics["best_epoch"] == best["epoch"]
    test = metrics["test"]
    assert 0 <= test["balanced_accuracy"] <= 1 and set(test["recall"]) == {str(d) for d in range(10)}
    assert abs(test["balanced_accuracy"] - sum(test["recall"].values()) / 10) < 1e-9
    stats = json.loads((tmp_path / "both" / "stats.json").read_text())
    assert stats["splits"]["val"]["imbalance"] < 1.5 < stats["splits"]["train"]["imbalance"]


def test_the_balanced_sampler_draws_from_a_frozen_backbones_cached_features(quick_run, tmp_path):
    result = _train(tmp_path, "head",
                    "-o", f"model.pretrained={quick_run / 'checkpoints' / 'best.pdparams'}",
                    "-o", "train.freeze=backbone", "-o", "data.sampler=balanced",
                    "-o", "augment.random_resized_crop=false", "-o", "augment.rand_augment_n=0")
    assert result.returncode == 0, result.stderr
    assert "the images' features are computed once" in result.stderr


def test_a_class_weight_list_of_the_wrong_length_is_one_line(tmp_path):
    result = _train(tmp_path, "wrong", "-o", "train.class_weights=[1,2,3]")
    assert_one_line_error(result, "train.class_weights lists 3 weights for 10 classes",
                          after_log=True)
