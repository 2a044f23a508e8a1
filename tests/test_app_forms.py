"""The web app's forms without a browser: a form shows the chosen config, and only the fields
the user changed become `-o` overrides; the Inference tab's examples are test images (the
browser walk in test_app.py checks the same end to end)."""

from pathlib import Path

import pytest

from vit.app.common import changed_overrides, form_values
from vit.app.training_tab import RUN_KEYS as KEYS
from vit.config import load_config, shipped_configs
from vit.errors import VitError


@pytest.mark.parametrize("name", sorted(shipped_configs()))
def test_an_unchanged_form_sends_no_override(name):
    config = load_config(shipped_configs()[name])
    values = form_values(config, KEYS)
    shown = dict(zip(KEYS, values))
    assert (shown["model.name"], shown["train.epochs"]) == (config.model.name, config.train.epochs)
    assert shown["model.pretrained"] == (config.model.pretrained or "")
    assert changed_overrides(config, KEYS, values) == []


def test_each_changed_field_is_one_override_and_a_cleared_path_is_null(tmp_path):
    config = load_config(shipped_configs()["cifar10_vit_tiny"])
    values = dict(zip(KEYS, form_values(config, KEYS)))
    values.update({"train.epochs": 3.0, "optim.lr": 0.0005, "data.source": "folder",
                   "data.root": str(tmp_path), "data.archive": "",
                   "model.pretrained": " ViT_base_patch16_224 "})
    assert changed_overrides(config, KEYS, list(values.values())) == [
        "model.pretrained=ViT_base_patch16_224", "train.epochs=3", "optim.lr=0.0005",
        "data.source=folder", f"data.root={tmp_path}"]
    values["data.root"] = ""
    assert changed_overrides(config, KEYS, list(values.values()))[-1] == "data.root=null"


def test_a_changed_path_that_does_not_exist_or_an_empty_number_is_named_by_its_label(tmp_path):
    config = load_config(shipped_configs()["default"])
    values = dict(zip(KEYS, form_values(config, KEYS)))
    with pytest.raises(VitError, match=f"data.root '{tmp_path / 'none'}' does not exist"):
        changed_overrides(config, KEYS, list({**values, "data.root": str(tmp_path / "none")}
                                             .values()))
    with pytest.raises(VitError, match="the epochs field is empty"):
        changed_overrides(config, KEYS, list({**values, "train.epochs": None}.values()))


def test_the_inference_examples_are_one_test_image_of_each_digit_pixel_for_pixel(tmp_path):
    import re

    import numpy as np
    from PIL import Image

    from vit.app.inference_tab import example_images
    from vit.config import load_default_config
    from vit.data.sources import build_datasets

    paths = example_images(tmp_path)
    test = build_datasets(load_default_config().data).splits["test"]
    assert [path.parent for path in paths] == [tmp_path] * 10
    for digit, path in enumerate(paths):
        label, index = re.fullmatch(r"digit-(\d)-test(\d+)\.png", path.name).groups()
        assert (label, test.class_names[test.labels[int(index)]]) == (str(digit), str(digit))
        with Image.open(path) as image:
            assert np.array_equal(np.asarray(image), np.asarray(test.load(int(index))))


def test_the_multilabel_config_starts_a_multilabel_run_with_no_override(tmp_path):
    """Choosing the config fills the form (the Data tab's source and task too); Start, with
    nothing changed, runs that config as it is. The trainer here is a stand-in that writes
    down its arguments."""
    import gradio as gr

    from vit.app.common import AppFolders
    from vit.app.runs import TrainingRuns
    from vit.app.training_tab import show_config, start_run

    fake = tmp_path / "python"
    fake.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {tmp_path / 'args'}\n")
    fake.chmod(0o755)
    configs = shipped_configs()
    values = show_config(configs, "multilabel_digits")
    shown = dict(zip(KEYS, values))
    assert (shown["data.source"], shown["data.task"]) == ("digit_mosaics", "multilabel")
    runs = TrainingRuns(tmp_path / "output", python=str(fake))
    run_dir = start_run(AppFolders(tmp_path / "output", tmp_path / "data"), runs, configs,
                        gr.Request(headers={}), "multilabel_digits", "ml", *values)[0]
    runs.processes[Path(run_dir)].wait(timeout=60)
    args = (tmp_path / "args").read_text().split("\n")[:-1]
    overrides = [args[i + 1] for i, arg in enumerate(args) if arg == "-o"]
    assert args[args.index("-c") + 1] == str(configs["multilabel_digits"])
    assert overrides == [f"output.dir={tmp_path / 'output'}", "output.run_name=ml"]
    assert load_config(configs["multilabel_digits"], overrides).data.task == "multilabel"


def test_class_weights_and_sampler_are_choices_and_an_impossible_pair_names_their_labels():
    import gradio as gr

    from vit.app.common import user_errors

    config = load_config(shipped_configs()["multilabel_digits"])
    values = dict(zip(KEYS, form_values(config, KEYS)))
    assert (values["train.class_weights"], values["data.sampler"]) == ("none", "random")
    changed = {**values, "train.class_weights": "balanced", "train.select_best_by": "map"}
    assert changed_overrides(config, KEYS, list(changed.values())) == [
        "train.class_weights=balanced", "train.select_best_by=map"]

    @user_errors
    def start(request: gr.Request, **fields):
        load_config(shipped_configs()["multilabel_digits"],
                    changed_overrides(config, KEYS, list({**values, **fields}.values())))

    for language, words in (("en-US", "use class weights balanced"),
                            ("zh-CN", "use 类别权重 balanced")):
        with pytest.raises(gr.Error, match=words):
            start(gr.Request(headers={"accept-language": language}),
                  **{"data.sampler": "balanced"})


def test_the_data_tabs_task_goes_with_its_source():
    from vit.app.common import data_overrides

    overrides = data_overrides("digit_mosaics", "multilabel", "", "", "", "")
    assert overrides == ["data.source=digit_mosaics", "data.task=multilabel"]
    assert load_config(shipped_configs()["default"], overrides).data.task == "multilabel"
