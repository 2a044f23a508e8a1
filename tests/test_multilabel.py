"""Several labels per image, end to end as a user meets it: a run of
configs/multilabel_digits.yaml picks its best epoch by validation mAP and records each label's
threshold with the model; tools/infer.py prints the labels above their thresholds and writes
the per-label report; an export carries the task and thresholds, and its int8 agreement counts
label decisions; a PaddleClas multi-label list trains."""

import json

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import assert_one_line_error, run_tool, write_image
from vit.config import load_config
from vit.data.sources import build_datasets

QUICK = ["-c", "configs/multilabel_digits.yaml", "-o", "train.epochs=3",
         "-o", "optim.warmup_epochs=0", "-o", "data.train_fraction=0.25"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("multilabel")
    result = run_tool("train", *QUICK, "-o", f"output.dir={out}", "-o", "output.run_name=run")
    assert result.returncode == 0, result.stderr
    assert "test mAP " in result.stdout
    return out / "run"


def _record(json_path):
    return json.loads(json_path.read_text())["model"]["preprocessing"]


def test_the_best_epoch_is_the_best_val_map_and_its_thresholds_are_recorded(run):
    metrics = json.loads((run / "metrics.json").read_text())
    history = metrics["history"]
    assert metrics["best_by"] == "val_map" and "val_top1" not in history[0]
    best = max(history, key=lambda r: r["val_map"])
    assert metrics["best_epoch"] == best["epoch"] and metrics["best_val_map"] == best["val_map"]
    assert set(metrics["test"]) >= {"map", "exact_match", "hamming_loss", "loss", "f1"}
    assert metrics["test"]["map"] > 0.5  # ten labels at chance would give about 0.27
    record = _record(run / "checkpoints" / "best.json")
    assert record["task"] == "multilabel" and len(record["thresholds"]) == 10
    assert all(0 < t < 1 for t in record["thresholds"])


def _mosaic(tmp_path, index=0):
    """A test mosaic as a PNG file, and the names of the digits it holds."""
    data = build_datasets(load_config("configs/multilabel_digits.yaml").data)
    test = data.splits["test"]
    path = tmp_path / f"mosaic{index}.png"
    Image.fromarray(test.items[index]).save(path)
    return path, [name for name, on in zip(data.class_names, test.labels[index]) if on]


def test_infer_prints_the_labels_above_their_thresholds(run, tmp_path):
    image, _ = _mosaic(tmp_path)
    result = run_tool("infer", "--weights", run, "--images", image, "--output", tmp_path / "p")
    assert result.returncode == 0, result.stderr
    row = json.loads((tmp_path / "p" / "predictions.json").read_text())[0]
    thresholds = _record(run / "checkpoints" / "best.json")["thresholds"]
    above = [(name, p) for (name, p), t in zip(row["probabilities"].items(), thresholds) if p >= t]
    assert sorted(row["labels"], key=lambda pair: -pair[1]) == [list(p) for p in
                                                              sorted(above, key=lambda x: -x[1])]
    shown = ", ".join(f"{name} {p:.3f}" for name, p in row["labels"]) or "no label above"
    assert f"{image}: {shown}" in result.stdout
    header = (tmp_path / "p" / "predictions.csv").read_text().splitlines()[0]
    assert header == "path,labels," + ",".join(str(d) for d in range(10)) + ",error"


def test_eval_writes_the_per_label_report_and_the_precision_recall_figure(run, tmp_path):
    result = run_tool("infer", "--weights", run, "--eval", "--output", tmp_path / "eval")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    trained = json.loads((run / "metrics.json").read_text())["test"]
    assert abs(metrics["map"] - trained["map"]) < 1e-6
    assert metrics["exact_match"] == trained["exact_match"]
    assert set(metrics["per_label"]) == {str(d) for d in range(10)}
    assert f"test split: mAP {metrics['map']:.4f}" in result.stdout
    assert "Hamming loss" in (tmp_path / "eval" / "report.txt").read_text()
    with Image.open(tmp_path / "eval" / "pr_curves.png") as figure:
        assert figure.size[0] > 300


def test_the_onnx_export_carries_task_and_thresholds_and_int8_counts_label_decisions(run, tmp_path):
    export = tmp_path / "export"
    result = run_tool("export", "--weights", run, "--output", export, "--format", "onnx",
                      "--precision", "int8")
    assert result.returncode == 0, result.stderr
    assert "label decision agreement" in result.stdout
    info = yaml.safe_load((export / "inference.yml").read_text())
    assert info["model"]["preprocessing"] == _record(run / "checkpoints" / "best.json")
    assert info["onnx"]["int8"]["decision_agreement"] >= 0.9
    served = run_tool("infer", "--onnx", export, "--eval", "--precision", "fp32",
                      "--output", tmp_path / "onnx")
    assert served.returncode == 0, served.stderr
    metrics = json.loads((tmp_path / "onnx" / "metrics.json").read_text())
    trained = json.loads((run / "metrics.json").read_text())["test"]
    assert abs(metrics["map"] - trained["map"]) < 1e-4


def test_a_paddleclas_multilabel_list_trains(tmp_path):
    rng = np.random.default_rng(0)
    lines = []
    for i in range(24):  # three labels: red, green, blue present or not
        on = rng.random(3) < 0.5
        write_image(tmp_path / "img" / f"{i}.png", color=tuple(int(v) * 200 for v in on))
        lines.append(f"img/{i}.png\t{','.join(str(int(v)) for v in on)}")
    (tmp_path / "train.txt").write_text("\n".join(lines) + "\n")
    (tmp_path / "labels.txt").write_text("red\ngreen\nblue\n")
    result = run_tool("train", "-o", "data.source=list", "-o", f"data.root={tmp_path}",
                      "-o", "data.train_list=train.txt", "-o", "data.label_names=labels.txt",
                      "-o", "data.task=multilabel", "-o", "data.batch_size=8",
                      "-o", "train.epochs=1", "-o", "optim.warmup_epochs=0",
                      "-o", f"output.dir={tmp_path / 'out'}", "-o", "output.run_name=list")
    assert result.returncode == 0, result.stderr
    assert "test mAP" in result.stdout
    record = _record(tmp_path / "out" / "list" / "checkpoints" / "best.json")
    assert record["class_names"] == ["red", "green", "blue"]


def test_a_label_vector_on_a_single_label_task_is_one_line(tmp_path):
    write_image(tmp_path / "img" / "0.png")
    (tmp_path / "train.txt").write_text("img/0.png\t1,0,1\n")
    result = run_tool("train", "-o", "data.source=list", "-o", f"data.root={tmp_path}",
                      "-o", "data.train_list=train.txt",
                      "-o", f"output.dir={tmp_path / 'out'}")
    assert_one_line_error(result, "train.txt:1: a label list on a single-label task",
                          "-o data.task=multilabel")
