"""The OpenVINO path: an IR converted from the exported ONNX file and checked against the eager
model, NNCF's int8, tools/infer.py --openvino, and one line where its packages are missing."""

import json
import sys

import numpy as np
import pytest
import yaml

from conftest import run_tool

pytest.importorskip("openvino")


@pytest.fixture(scope="module")
def exported(quick_run, tmp_path_factory):
    """One OpenVINO int8 export of the quick run: model.onnx, model.xml and model.int8.xml.
    It runs in a fresh home folder: OpenVINO's telemetry keeps its client id and counts there
    (`~/intel`) whenever it is on, and it must stay off."""
    from vit.kernels.build import kernels_home

    export = tmp_path_factory.mktemp("openvino") / "export"
    home = tmp_path_factory.mktemp("home")
    result = run_tool("export", "--weights", quick_run, "--output", export,
                      "--format", "openvino", "--precision", "int8",
                      env={"HOME": str(home), "VIT_PADDLE_KERNELS": str(kernels_home())})
    assert result.returncode == 0, result.stderr
    assert not (home / "intel").exists(), sorted(home.rglob("*"))
    assert "OpenVINO against eager Paddle" in result.stdout
    assert f"python tools/infer.py --openvino {export}" in result.stdout
    return export


def test_the_ir_is_checked_recorded_and_evaluates_like_the_checkpoint(quick_run, exported,
                                                                      tmp_path):
    import openvino

    info = yaml.safe_load((exported / "inference.yml").read_text())
    record = info["openvino"]
    assert record["file"] == "model.xml" and record["converted_from"] == "model.onnx"
    assert record["max_abs_logit_difference"] <= 1e-4
    assert record["openvino"] == openvino.__version__
    assert (exported / "model.bin").is_file() and (exported / "model.onnx").is_file()
    eager = run_tool("infer", "--weights", quick_run, "--eval", "--output", tmp_path / "eager")
    served = run_tool("infer", "--openvino", exported, "--eval", "--precision", "fp32",
                      "--output", tmp_path / "openvino")
    assert eager.returncode == 0 and served.returncode == 0, served.stderr
    theirs = json.loads((tmp_path / "eager" / "metrics.json").read_text())
    mine = json.loads((tmp_path / "openvino" / "metrics.json").read_text())
    assert mine["top1"] == theirs["top1"] and mine["num_samples"] == theirs["num_samples"]
    assert mine["confusion_matrix"] == theirs["confusion_matrix"]
    assert abs(mine["loss"] - theirs["loss"]) < 1e-4


def test_nncfs_int8_records_and_prints_its_agreement_with_float32(exported):
    low = yaml.safe_load((exported / "inference.yml").read_text())["openvino"]["int8"]
    assert low["file"] == "model.int8.xml" and (exported / "model.int8.bin").is_file()
    assert low["calibration_images"] == 32 and low["checked_images"] == 270
    assert low["top1_agreement"] >= 0.9
    result = run_tool("infer", "--openvino", exported, "--eval")  # the recorded precision
    assert result.returncode == 0, result.stderr
    assert "int8 against fp32 on the same 359 images: top-1 agreement" in result.stdout
    metrics = json.loads((exported / "eval_test_openvino_int8" / "metrics.json").read_text())
    assert metrics["agreement"]["top1_agreement"] >= 0.9


def test_bf16_runs_natively_or_says_in_one_line_that_it_runs_float32(exported, tmp_path):
    import openvino

    from vit.engine.openvino_export import native_bf16_in_openvino

    result = run_tool("infer", "--openvino", exported, "--eval", "--precision", "bf16",
                      "--output", tmp_path / "bf16")
    assert result.returncode == 0, result.stderr
    said = "this CPU has no native bfloat16" in result.stderr
    assert said != native_bf16_in_openvino(openvino.Core())
    assert json.loads((tmp_path / "bf16" / "metrics.json").read_text())["num_samples"] == 359


def test_the_app_lists_and_loads_the_openvino_export(exported):
    from vit.app.inference_tab import _load, model_choices
    from vit.engine.openvino_export import OpenvinoPredictor

    ir = exported / "model.xml"
    choices = model_choices(exported.parent.parent)
    assert str(ir) in choices and str(exported / "inference.yml") in choices
    predictor = _load(str(ir))
    assert isinstance(predictor.runner, OpenvinoPredictor) and predictor.precision == "int8"
    assert predictor.logits(np.zeros((2, 3, 16, 16), np.float32)).shape == (2, 10)


def test_without_its_packages_it_is_one_line_and_writes_nothing(quick_run, tmp_path,
                                                                monkeypatch):
    from vit.engine.export import export_inference_model
    from vit.engine.inference import load_for_inference
    from vit.errors import VitError

    loaded = load_for_inference(quick_run)
    monkeypatch.setitem(sys.modules, "openvino", None)  # as if not installed
    with pytest.raises(VitError, match="the OpenVINO path needs openvino") as error:
        export_inference_model(loaded, tmp_path / "export", fmt="openvino")
    assert "pip install -e '.[cpu,openvino]'" in error.value.hint
    assert not (tmp_path / "export").exists()
