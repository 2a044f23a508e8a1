"""The web app with both tasks, without a browser: the Inference tab's handlers on a model of
one class per image and on one of several labels per image (every label's probability, the
labels above their thresholds, mAP with the precision-recall curves and the per-label report),
and the Training tab's run figures (balanced accuracy beside top-1, mAP beside exact match) in
the progress line, the run list and the comparison table."""

import re
import shutil
from pathlib import Path

import gradio as gr
import pytest

from conftest import ROOT, run_tool

LABELLED_ABOVE = re.compile(r"\*\*labels above their thresholds\*\* \(first image\): (.*)")


@pytest.fixture(scope="module")
def multilabel_run(tmp_path_factory) -> Path:
    """One epoch of the multilabel digit mosaics on a tenth of their training split."""
    out = tmp_path_factory.mktemp("multilabel")
    result = run_tool("train", "-c", ROOT / "configs" / "multilabel_digits.yaml",
                      "-o", "train.epochs=1", "-o", "optim.warmup_epochs=0",
                      "-o", "data.train_fraction=0.1", "-o", f"output.dir={out}",
                      "-o", "output.run_name=ml")
    assert result.returncode == 0, result.stderr
    return out / "ml"


def _predictor(run_dir: Path):
    from vit.engine.inference import load_for_inference

    return load_for_inference(run_dir / "checkpoints" / "best.pdparams")


def _mosaic(predictor, path: Path) -> Path:
    """A test image of the data set the predictor was trained on, as a PNG."""
    from vit.data.sources import build_datasets

    build_datasets(predictor.config.data).splits["test"].load(0).save(path)
    return path


def test_a_multilabel_prediction_shows_every_label_and_names_those_above_their_thresholds(
        multilabel_run, tmp_path):
    from vit.app.inference_tab import predict_uploads

    predictor = _predictor(multilabel_run)
    prep = predictor.preprocessing
    text = tmp_path / "text.png"
    text.write_text("not an image\n")
    best, line, rollout, table = predict_uploads(
        predictor, [_mosaic(predictor, tmp_path / "mosaic.png"), text], tmp_path / "figures")
    assert sorted(best) == sorted(prep.class_names)  # every label, a sigmoid each
    above = [(name, p) for name, p in sorted(best.items(), key=lambda item: -item[1])
             if p >= prep.thresholds[prep.class_names.index(name)]]
    if above:
        named = LABELLED_ABOVE.fullmatch(line).group(1)
        assert named == ", ".join(f"{name} ({p:.2f})" for name, p in above)
    else:
        assert line == "**no label above its threshold** (first image)"
    assert Path(rollout).is_file()
    assert table["headers"][:3] == ["image", "labels above threshold", "top-1 (probability)"]
    mosaic_row, text_row = table["value"]
    assert mosaic_row[1] == (", ".join(f"{name} ({p:.3f})" for name, p in above) or "(none)")
    assert text_row[0] == "text.png" and "not an image" in text_row[-1]
    chinese = predict_uploads(predictor, [tmp_path / "mosaic.png"], tmp_path / "figures",
                              "zh-CN")[1]
    assert chinese.startswith("**超过阈值的标签**" if above else
                              "**没有标签超过其阈值**")


def test_a_multilabel_evaluation_shows_map_the_precision_recall_curves_and_a_label_report(
        multilabel_run, tmp_path):
    import json

    from vit.app.inference_tab import evaluate_split

    predictor = _predictor(multilabel_run)
    line, figure, mistakes, report = evaluate_split(predictor, "test", tmp_path)
    curves = Path(figure)
    metrics = json.loads((curves.parent / "metrics.json").read_text())
    assert line == (f"**test**: mAP **{metrics['map']:.4f}**, exact match "
                    f"{metrics['exact_match']:.4f}, Hamming loss {metrics['hamming_loss']:.4f}, "
                    f"loss {metrics['loss']:.4f}, on {metrics['num_samples']} images")
    assert curves.name == "pr_curves.png" and curves.is_file()  # in the confusion matrix's place
    assert mistakes is None  # the mistakes figure is emptied
    rows = {line.split()[0] for line in report.splitlines() if line.strip()}
    assert set(predictor.preprocessing.class_names) <= rows and "mAP" in rows
    chinese = evaluate_split(predictor, "test", tmp_path, "zh-CN")[0]
    assert chinese.startswith("**测试集**：mAP **")
    assert "完全匹配率" in chinese and "汉明损失" in chinese


def test_a_multiclass_evaluation_shows_balanced_accuracy_beside_top1(quick_run, tmp_path):
    from vit.app.inference_tab import evaluate_split

    line, figure, mistakes, report = evaluate_split(_predictor(quick_run), "test", tmp_path)
    assert re.fullmatch(r"\*\*test\*\*: top-1 \*\*0\.\d{4}\*\*, top-5 [01]\.\d{4}, balanced "
                        r"accuracy 0\.\d{4}, loss \d+\.\d{4}, on \d+ images", line), line
    assert Path(figure).name == "confusion_matrix.png" and Path(mistakes).is_file()
    assert "precision" in report


def test_a_multiclass_prediction_shows_the_top5_and_no_labels_line(quick_run, tmp_path):
    from PIL import Image
    from sklearn.datasets import load_digits

    from vit.app.inference_tab import TOP_K, predict_uploads

    three = tmp_path / "three.png"
    Image.fromarray((load_digits().images[3] * 255 / 16).astype("uint8")).save(three)
    best, line, _, table = predict_uploads(_predictor(quick_run), [three], tmp_path)
    assert len(best) == TOP_K and line == ""
    assert table["headers"][1] == "top-1 (probability)"


def test_a_runs_figures_are_its_tasks_headline_in_its_progress_line(multilabel_run, quick_run):
    from vit.app.training_tab import progress_line
    from vit.engine.run_log import load_metrics

    finished = {"state": "finished", "epoch": 1, "epochs": 1, "step": 8, "steps": 8,
                "message": "test mAP 0.5  exact match 0.1  Hamming loss 0.3  loss 0.6"}
    metrics = load_metrics(multilabel_run)
    test = metrics["test"]
    line = progress_line(multilabel_run, finished, "en", metrics)
    assert f"test: mAP {test['map']:.4f}, exact match {test['exact_match']:.4f}" in line
    assert "Hamming" not in line  # the English end message gives way to the headline
    training = {"state": "running", "epoch": 2, "epochs": 3, "step": 9, "steps": 24}
    untested = {key: value for key, value in metrics.items() if key != "test"}
    assert (f"best validation (epoch 1): mAP {metrics['best_val_map']:.4f}"
            in progress_line(multilabel_run, training, "en", untested))
    test = load_metrics(quick_run)["test"]
    chinese = progress_line(quick_run, finished, "zh-CN", load_metrics(quick_run))
    assert f"测试集：top-1 {test['top1']:.4f}，平衡准确率 {test['balanced_accuracy']:.4f}" in chinese


def test_the_run_list_and_comparison_show_each_runs_own_figures(multilabel_run, quick_run):
    from vit.app.common import AppFolders
    from vit.app.runs import TrainingRuns
    from vit.app.training_tab import compare_chosen, list_runs

    output = multilabel_run.parent
    shutil.copytree(quick_run, output / "quick", dirs_exist_ok=True)
    runs, english = TrainingRuns(output), gr.Request(headers={"accept-language": "en-US"})
    labels = dict((value, shown) for shown, value in list_runs(runs, english)["choices"])
    assert re.fullmatch(r"ml — test: mAP 0\.\d{4}, exact match 0\.\d{4}", labels["ml"])
    assert re.fullmatch(r"quick — test: top-1 0\.\d{4}, balanced accuracy 0\.\d{4}",
                        labels["quick"])
    _, table, _ = compare_chosen(AppFolders(output, output / "data"), runs, ["ml", "quick"],
                                 english)
    rows = [dict(zip(table["headers"], row)) for row in table["value"]]
    assert [row["best chosen by"] for row in rows] == ["mAP", "top-1"]
    assert rows[0]["test top-1"] == rows[1]["test mAP"] == "-"
    assert re.fullmatch(r"0\.\d{4}", rows[1]["test balanced accuracy"])
    _, alone, _ = compare_chosen(AppFolders(output, output / "data"), runs, ["quick"], english)
    assert "test mAP" not in alone["headers"]  # a column no chosen run has a number in
