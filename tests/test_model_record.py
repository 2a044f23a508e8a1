"""The model record: one shape in the checkpoint's .json, inference.yml and the safetensors
metadata, read by one function; files written before it still load; each fact once."""

import json
import shutil

import numpy as np
import pytest
import yaml

from conftest import assert_one_line_error, run_tool


def copy_best(run, folder):
    """The run's best checkpoint copied into `folder`; returns its .pdparams."""
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in (".pdparams", ".json"):
        shutil.copy(run / "checkpoints" / f"best{suffix}", folder / f"best{suffix}")
    return folder / "best.pdparams"


def as_format_2(meta: dict) -> dict:
    """A format-3 checkpoint record rewritten as vit-paddle wrote format 2: the complete model
    arguments, a top-level class count, the preprocessing beside the model."""
    model = meta.pop("model")
    prep = model["preprocessing"]
    args = {**model["args"], "num_classes": len(prep["class_names"]),
            "img_size": prep["image_size"]}
    return {**meta, "format": "vit-paddle-checkpoint/2", "model": {"name": model["name"],
                                                                   "args": args},
            "num_classes": len(prep["class_names"]), "preprocessing": prep}


def as_format_1(meta: dict) -> dict:
    """Format 1 kept the preprocessing keys at the top level."""
    old = as_format_2(meta)
    return {**{k: v for k, v in old.items() if k != "preprocessing"}, **old["preprocessing"],
            "format": "vit-paddle-checkpoint/1"}


@pytest.fixture(scope="module")
def exported(quick_run, tmp_path_factory):
    """The quick run exported once (Paddle Inference, inference.yml, model.safetensors)."""
    export = tmp_path_factory.mktemp("record") / "export"
    result = run_tool("export", "--weights", quick_run, "--output", export)
    assert result.returncode == 0, result.stderr
    return export


def logits_of(weights):
    from vit.engine.inference import load_for_inference

    loaded = load_for_inference(weights)
    images = np.random.default_rng(0).standard_normal((3, 3, 16, 16)).astype(np.float32)
    return loaded.class_names, loaded.logits(images)


def test_the_record_is_written_once_in_one_shape_in_all_three_places(quick_run, exported):
    from vit.serialization import load_safetensors

    checkpoint = json.loads((quick_run / "checkpoints" / "best.json").read_text())
    assert set(checkpoint["model"]) == {"name", "args", "preprocessing"}
    assert "num_classes" not in checkpoint and "preprocessing" not in checkpoint
    assert not {"num_classes", "img_size"} & set(checkpoint["model"]["args"])
    assert checkpoint["format"] == "vit-paddle-checkpoint/3"
    info = yaml.safe_load((exported / "inference.yml").read_text())
    _, metadata = load_safetensors(exported / "model.safetensors")
    assert info["model"] == checkpoint["model"] == json.loads(metadata["model"])
    assert "num_classes" not in info and "preprocessing" not in info


@pytest.mark.parametrize("old_format", [as_format_1, as_format_2])
def test_checkpoints_of_earlier_formats_still_load(quick_run, tmp_path, old_format):
    new = copy_best(quick_run, tmp_path / "new")
    old = copy_best(quick_run, tmp_path / "old")
    meta = json.loads(old.with_suffix(".json").read_text())
    old.with_suffix(".json").write_text(json.dumps(old_format(meta)))
    names, logits = logits_of(old)
    assert names == logits_of(new)[0]
    np.testing.assert_array_equal(logits, logits_of(new)[1])
    result = run_tool("infer", "--weights", old, "--images", tmp_path / "none.png")
    assert "does not exist" in result.stderr  # the record was read; the image was not found


def test_an_earlier_records_copies_that_disagree_are_refused_with_a_table(quick_run, tmp_path):
    """Format 2 wrote the input size in the model's arguments and in the preprocessing record:
    a file edited in one of them is refused, not read half one way and half the other."""
    weights = copy_best(quick_run, tmp_path)
    meta = as_format_2(json.loads(weights.with_suffix(".json").read_text()))
    meta["preprocessing"]["image_size"] = 32
    weights.with_suffix(".json").write_text(json.dumps(meta))
    for tool, args in (("infer", ["--eval"]), ("export", ["--output", tmp_path / "export"])):
        rows = assert_one_line_error(run_tool(tool, "--weights", weights, *args),
                                     "records the input size differently", table=True)
        assert rows[1:] == [["input", "size", "model.args.img_size", "[16,", "16]"],
                            ["input", "size", "preprocessing.image_size", "[32,", "32]"]]
    assert not (tmp_path / "export").exists()


def test_a_record_that_repeats_a_derived_fact_is_refused(quick_run, tmp_path):
    weights = copy_best(quick_run, tmp_path)
    meta = json.loads(weights.with_suffix(".json").read_text())
    meta["model"]["args"]["num_classes"] = 3
    weights.with_suffix(".json").write_text(json.dumps(meta))
    assert_one_line_error(run_tool("infer", "--weights", weights, "--eval"),
                          "records num_classes among the model's arguments",
                          "remove model.args.num_classes")


def test_an_earlier_exports_inference_yml_and_safetensors_are_read(quick_run, tmp_path):
    from vit.engine.model_record import read_model_record

    checkpoint = json.loads((quick_run / "checkpoints" / "best.json").read_text())
    record = read_model_record(checkpoint, "best.json")
    prep = checkpoint["model"]["preprocessing"]
    old_yml = {"model": record.name, "num_classes": len(prep["class_names"]),
               "precision": "fp32", "preprocessing": prep}
    from_yml = read_model_record(old_yml, "inference.yml")
    assert (from_yml.name, from_yml.preprocessing) == (record.name, record.preprocessing)
    assert from_yml.args == {}
    old_metadata = {"format": "vit-paddle",
                    "model": json.dumps({"name": record.name, "args": record.model_args()}),
                    "preprocessing": json.dumps(prep)}
    assert read_model_record(old_metadata, "model.safetensors") == record


def test_the_exported_safetensors_load_by_path_with_their_classes(quick_run, exported):
    from vit.engine.inference import load_for_inference, load_published

    published = load_published(str(exported / "model.safetensors"))
    checkpoint = load_for_inference(quick_run)
    assert published.record == checkpoint.record
    images = np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32)
    np.testing.assert_allclose(published.logits(images), checkpoint.logits(images), atol=1e-6)
