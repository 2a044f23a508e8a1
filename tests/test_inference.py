"""Inference and evaluation from a checkpoint alone: predictions, accuracy, per-class report,
confusion matrix, export to Paddle Inference, and one-line errors."""

import csv
import json

import numpy as np
import paddle
import pytest
from PIL import Image

from conftest import assert_one_line_error, run_tool, write_image

@pytest.fixture
def trained(quick_run):
    return quick_run


def test_eval_reproduces_the_trainers_test_accuracy_and_writes_the_report(trained, tmp_path):
    result = run_tool("infer", "--weights", trained / "checkpoints" / "best.pdparams", "--eval",
                      "--output", tmp_path)
    assert result.returncode == 0, result.stderr
    trainer = json.loads((trained / "metrics.json").read_text())["test"]
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["top1"] == trainer["top1"] and metrics["num_samples"] == 359
    assert {"top1", "top5", "num_samples", "per_class", "loss"} <= set(metrics)
    with open(tmp_path / "confusion_matrix.csv", newline="") as handle:
        rows = list(csv.reader(handle))
    names = [str(i) for i in range(10)]
    assert rows[0][1:] == names and [r[0] for r in rows[1:]] == names
    counts = np.array([[int(c) for c in r[1:]] for r in rows[1:]])
    assert counts.sum() == 359 and np.trace(counts) == round(metrics["top1"] * 359)
    assert counts.sum(1).tolist() == [metrics["per_class"][n]["support"] for n in names]
    for name in ("confusion_matrix.png", "mistakes.png"):
        with Image.open(tmp_path / name) as figure:
            assert figure.size[0] > 500
    assert "precision" in (tmp_path / "report.txt").read_text()
    assert "per-class report" in result.stdout and "confusion_matrix.png" in result.stdout


def test_eval_logs_to_visualdl_when_asked(trained, tmp_path):
    from visualdl import LogReader

    result = run_tool("infer", "--weights", trained / "checkpoints" / "best.pdparams", "--eval",
                      "--split", "val", "--output", tmp_path / "e", "--vdl-dir", tmp_path / "vdl")
    assert result.returncode == 0, result.stderr
    reader = LogReader(file_path=str(next((tmp_path / "vdl").glob("vdlrecords.*.log"))))
    top1 = reader.get_data("scalar", "eval/val/top1")
    assert abs(top1[0].value - json.loads((tmp_path / "e" / "metrics.json").read_text())["top1"]) < 1e-6


def test_predict_images_and_folders_with_an_unreadable_file(trained, tmp_path):
    from sklearn.datasets import load_digits

    digits = load_digits()
    (tmp_path / "imgs").mkdir()
    for i in range(4):
        Image.fromarray((digits.images[i] * 255 / 16).astype("uint8")).save(tmp_path / "imgs" / f"{i}.png")
    (tmp_path / "imgs" / "broken.jpg").write_text("not an image")
    single = write_image(tmp_path / "one.png", "L", color=0)
    result = run_tool("infer", "--weights", trained / "checkpoints" / "best.pdparams", "--images",
                      tmp_path / "imgs", single, "--top-k", "3", "--output", tmp_path / "out")
    assert result.returncode == 0, result.stderr
    rows = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert len(rows) == 6
    broken = [r for r in rows if r["path"].endswith("broken.jpg")][0]
    assert "error" in broken and "top" not in broken
    good = [r for r in rows if "top" in r]
    assert len(good) == 5 and all(len(r["top"]) == 3 for r in good)
    assert all(abs(sum(p for _, p in r["top"])) <= 1.0 + 1e-6 for r in good)
    with open(tmp_path / "out" / "predictions.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    digits_names = [str(i) for i in range(10)]
    assert len(table) == 6 and [row["path"] for row in table] == [row["path"] for row in rows]
    for row in table:
        if row["path"].endswith("broken.jpg"):
            assert row["top1_class"] == "" and row["error"]
        else:
            assert row["top1_class"] in digits_names and row["error"] == ""
            assert 0 < float(row["top1_prob"]) <= 1


def test_exported_model_agrees_with_the_dynamic_model(trained, tmp_path):
    from vit.data.builder import prepare_data
    from vit.engine.export import InferenceModel
    from vit.engine.inference import load_for_inference
    from vit.data.loaders import build_loader

    loaded = load_for_inference(trained / "checkpoints" / "best.pdparams")
    result = run_tool("export", "--weights", trained / "checkpoints" / "best.pdparams",
                      "--output", tmp_path / "export")
    assert result.returncode == 0, result.stderr
    static = InferenceModel(tmp_path / "export")
    assert static.class_names == loaded.class_names
    data = prepare_data(loaded.config, loaded.preprocessing.image_size)
    test = data.test.with_transform(loaded.preprocessing.eval_transform())
    dynamic_top1, static_top1 = [], []
    for batch in build_loader(test, 100, False):
        with paddle.no_grad():
            dynamic = loaded.model(batch["images"]).numpy()
        exported = static.logits(batch["images"])
        np.testing.assert_allclose(exported, dynamic, atol=1e-4)
        dynamic_top1 += dynamic.argmax(1).tolist()
        static_top1 += exported.argmax(1).tolist()
    assert len(static_top1) == 359 and static_top1 == dynamic_top1
    assert (tmp_path / "export" / "model.safetensors").is_file()


def test_a_paddle_inference_run_leaves_eager_paddle_its_threads(trained, tmp_path):
    """A predictor's run sets the process's OpenMP and MKL threads to one; vit sets them back,
    or every eager operation after an export check or an evaluation ran on one core."""
    import ctypes
    from pathlib import Path

    from vit import cpu
    from vit.engine.export import InferenceModel

    runtime = Path(paddle.__file__).parent / "libs" / "libiomp5.so"
    if not runtime.exists():
        pytest.skip("this Paddle build has no libiomp5 to ask")
    result = run_tool("export", "--weights", trained / "checkpoints" / "best.pdparams",
                      "--output", tmp_path / "export")
    assert result.returncode == 0, result.stderr
    cpu.configure(2)
    InferenceModel(tmp_path / "export").logits(np.zeros((2, 3, 16, 16), np.float32))
    assert ctypes.CDLL(str(runtime)).omp_get_max_threads() == 2
    cpu.configure()


def test_a_config_that_does_not_fit_the_checkpoint_is_refused_with_a_table(trained):
    result = run_tool("infer", "--weights", trained / "checkpoints" / "best.pdparams", "--eval",
                      "-o", "model.name=ViT_tiny_patch4_32")
    rows = assert_one_line_error(result, "does not fit the config",
                                 "ViT_tiny_patch4_16 vs ViT_tiny_patch4_32", table=True)
    assert ["model", "ViT_tiny_patch4_16", "ViT_tiny_patch4_32"] in rows


def test_missing_paths_are_named(trained, tmp_path):
    assert_one_line_error(run_tool("infer", "--weights", tmp_path / "none.pdparams", "--eval"),
                          "none.json is missing")
    assert_one_line_error(run_tool("infer", "--weights", trained / "checkpoints" / "best.pdparams",
                                   "--images", tmp_path / "nowhere"), "nowhere' does not exist")


def test_an_altered_checkpoint_is_refused(trained, tmp_path):
    import shutil

    for suffix in (".pdparams", ".json"):
        shutil.copy(trained / "checkpoints" / f"best{suffix}", tmp_path / f"best{suffix}")
    with open(tmp_path / "best.pdparams", "ab") as handle:
        handle.write(b"\0")
    assert_one_line_error(run_tool("infer", "--weights", tmp_path / "best.pdparams", "--eval"),
                          "is incomplete or altered")


def test_confusion_matrix_stays_readable_at_100_classes(tmp_path):
    from vit.viz import save_figure
    from vit.viz.eval_figures import plot_confusion_matrix

    rng = np.random.default_rng(0)
    matrix = np.diag(rng.integers(5, 20, 100)) + rng.integers(0, 2, (100, 100))
    figure = plot_confusion_matrix(matrix, [f"class_{i:03d}" for i in range(100)])
    counts_axes = figure.axes[0]
    assert len(counts_axes.get_xticklabels()) == 100 and not counts_axes.texts
    path = save_figure(figure, tmp_path / "cm.png")
    with Image.open(path) as picture:
        assert picture.size[0] > 2000


def test_bf16_runs_where_the_cpu_has_it_and_is_refused_in_one_line_elsewhere(trained, tmp_path):
    from vit.engine.paddle_predictor import native_bf16

    export = tmp_path / "export"
    assert run_tool("export", "--weights", trained, "--output", export,
                    "--precision", "bf16").returncode == 0
    assert "precision: bf16" in (export / "inference.yml").read_text()
    result = run_tool("infer", "--inference-model", export, "--eval", "--output", tmp_path / "bf16")
    if not native_bf16():
        assert_one_line_error(result, "bf16 needs a CPU with native bfloat16", "--precision fp32")
        return
    assert result.returncode == 0, result.stderr
    from vit.data import build_datasets, build_loader
    from vit.engine.export import InferenceModel

    low, full = InferenceModel(export), InferenceModel(export, precision="fp32")
    assert (low.precision, full.precision) == ("bf16", "fp32")
    test = build_datasets(full.config.data).splits["test"].with_transform(
        full.preprocessing.eval_transform())
    agree = [low.logits(b["images"]).argmax(1) == full.logits(b["images"]).argmax(1)
             for b in build_loader(test, 128, False)]
    assert np.concatenate(agree).mean() >= 0.99  # top-1 agreement with float32


def test_precision_needs_the_exported_model(trained):
    assert_one_line_error(run_tool("infer", "--weights", trained, "--eval", "--precision", "bf16"),
                          "--precision bf16 works with --inference-model")


def test_the_probe_tool_prints_few_shot_accuracy_and_writes_json(trained, tmp_path):
    result = run_tool("probe", "--weights", trained, "--shots", "1", "5", "--draws", "2",
                      "--output", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "linear few-shot accuracy on digits (10 classes, 359 test images, 2 draws)" in \
        result.stdout
    record = json.loads((tmp_path / "probe.json").read_text())
    assert list(record["shots"]) == ["1", "5"]
    assert all(len(s["accuracy"]) == 2 and 0 <= s["mean"] <= 1 for s in record["shots"].values())
    assert_one_line_error(run_tool("probe", "--weights", trained, "--shots", "500"),
                          "500-shot needs 500 training images of every class")


def test_the_exported_models_evaluate_like_the_checkpoint(trained, tmp_path):
    """One export with --format onnx --precision int8 writes three graphs: Paddle Inference's,
    model.onnx (checked against the eager model) and model.int8.onnx (calibrated on training
    images); the float32 ones evaluate exactly like the checkpoint, the int8 one close to it."""
    import onnx
    import onnxruntime
    import yaml

    export = tmp_path / "export"
    result = run_tool("export", "--weights", trained, "--output", export, "--format", "onnx",
                      "--precision", "int8")
    assert result.returncode == 0, result.stderr
    assert "max |logit difference|" in result.stdout and "top-1 agreement" in result.stdout
    info = yaml.safe_load((export / "inference.yml").read_text())
    record = info["onnx"]
    assert record["file"] == "model.onnx" and record["max_abs_logit_difference"] <= 1e-4
    assert info["precision"] == "int8" and record["int8"]["file"] == "model.int8.onnx"
    assert record["int8"]["calibration_images"] == 32 and record["int8"]["checked_images"] == 270
    assert record["int8"]["top1_agreement"] >= 0.9
    # the products with a weight read int8 and give float32; attention's q kT and P v stay float32
    graph = onnx.load(str(export / "model.int8.onnx")).graph
    made_by = {name: node.op_type for node in graph.node for name in node.output}
    dequantised = [sum(made_by.get(name) == "DequantizeLinear" for name in node.input)
                   for node in graph.node if node.op_type == "MatMul"]
    assert sorted(set(dequantised)) == [0, 2]
    assert dequantised.count(0) == 2 * sum(node.op_type == "Softmax" for node in graph.node)
    assert not [node for node in graph.node if node.op_type == "QuantizeLinear"
                and made_by.get(node.input[0]) in ("MatMul", "Gemm", "Conv")]
    session = onnxruntime.InferenceSession(str(export / "model.onnx"),
                                           providers=["CPUExecutionProvider"])
    for batch in (1, 5):  # the batch axis is dynamic
        images = np.zeros((batch, 3, 16, 16), np.float32)
        assert session.run(None, {session.get_inputs()[0].name: images})[0].shape == (batch, 10)
    eager = run_tool("infer", "--weights", trained, "--eval", "--output", tmp_path / "eager")
    assert eager.returncode == 0, eager.stderr
    theirs = json.loads((tmp_path / "eager" / "metrics.json").read_text())
    for runtime in ("--inference-model", "--onnx"):  # float32 of both
        served = run_tool("infer", runtime, export, "--eval", "--precision", "fp32",
                          "--output", tmp_path / runtime)
        assert served.returncode == 0, served.stderr
        mine = json.loads((tmp_path / runtime / "metrics.json").read_text())
        assert mine["top1"] == theirs["top1"] and mine["num_samples"] == 359, runtime
        assert mine["confusion_matrix"] == theirs["confusion_matrix"], runtime
        assert abs(mine["loss"] - theirs["loss"]) < 1e-4, runtime
        for name in ("confusion_matrix.png", "confusion_matrix.csv", "report.txt",
                     "mistakes.png"):
            assert (tmp_path / runtime / name).is_file(), (runtime, name)
    low = run_tool("infer", "--onnx", export, "--eval")  # the recorded precision: int8
    assert low.returncode == 0, low.stderr
    int8 = json.loads((export / "eval_test_onnx_int8" / "metrics.json").read_text())
    assert abs(int8["top1"] - theirs["top1"]) <= 0.05 and int8["num_samples"] == 359
    # compared with the float32 model it was quantised from, on the same test images
    assert "int8 against fp32 on the same 359 images: top-1 agreement" in low.stdout
    same = int8["agreement"]
    assert (same["reference"], same["images"]) == ("fp32", 359)
    assert same["top1_agreement"] >= 0.9 and 0 < same["max_abs_logit_difference"] < 5
    assert "agreement" not in mine  # float32 has nothing to be compared with
    assert_one_line_error(run_tool("infer", "--inference-model", export, "--eval"),
                          "int8 runs on ONNX Runtime", "--onnx")
    predicted = run_tool("infer", "--onnx", export, "--images", write_image(tmp_path / "a.png"),
                         "--output", tmp_path / "pred")
    assert predicted.returncode == 0 and "1 of 1 images predicted" in predicted.stdout
    export_plain = tmp_path / "plain"  # a Paddle-only export has no model.onnx: named, with the fix
    export_plain.mkdir()
    (export_plain / "inference.yml").write_text((export / "inference.yml").read_text())
    assert_one_line_error(run_tool("infer", "--onnx", export_plain, "--eval", "--precision",
                                   "fp32"), "model.onnx is missing", "--format onnx")
    assert_one_line_error(run_tool("export", "--weights", trained, "--output", tmp_path / "x",
                                   "--precision", "int8"), "int8", "--format onnx")


def test_the_onnx_path_without_its_packages_is_one_line_and_writes_nothing(trained, tmp_path,
                                                                         monkeypatch):
    import sys

    from vit.engine.export import export_inference_model
    from vit.engine.inference import load_for_inference
    from vit.errors import VitError

    loaded = load_for_inference(trained)
    monkeypatch.setitem(sys.modules, "paddle2onnx", None)  # as if not installed
    with pytest.raises(VitError, match="needs paddle2onnx and onnxruntime") as error:
        export_inference_model(loaded, tmp_path / "export", fmt="onnx")
    assert "pip install -e '.[cpu,onnx]'" in error.value.hint
    assert not (tmp_path / "export").exists()
