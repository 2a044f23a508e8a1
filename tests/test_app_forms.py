"""The web app's forms without a browser: a form shows the chosen config, and only the fields
the user changed become `-o` overrides; the Inference tab's examples are test images (the
browser walk in test_app.py checks the same end to end)."""

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
