"""Configuration: YAML + -o overrides -> a validated, frozen Config, with one-line errors."""

import dataclasses

import pytest

from conftest import ROOT, assert_one_line_error, run_tool
from vit.config import all_keys, load_config, parse_override, parse_yaml, save_config
from vit.errors import ConfigError


def test_unknown_override_key_names_closest_match():
    with pytest.raises(ConfigError, match=r"unknown key 'train.epoch' in -o train.epoch=3; did you mean 'train.epochs'\?"):
        load_config(None, ["train.epoch=3"])


def test_unknown_key_in_file_names_the_file_and_closest(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("optim:\n  learning_rate: 0.1\n")
    with pytest.raises(ConfigError, match=r"unknown key 'optim.learning_rate' in .*bad.yaml"):
        load_config(path)


def test_unknown_section_is_refused(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("optimizer:\n  lr: 0.1\n")
    with pytest.raises(ConfigError, match="unknown section 'optimizer'.*'optim'"):
        load_config(path)


def test_wrong_type_names_key_expected_type_and_value():
    with pytest.raises(ConfigError, match=r"train.epochs must be an integer, got 'ten' in -o train.epochs=ten"):
        load_config(None, ["train.epochs=ten"])
    with pytest.raises(ConfigError, match=r"augment.hflip must be a number, got True"):
        load_config(None, ["augment.hflip=true"])


def test_choice_keys_suggest_the_closest_choice():
    with pytest.raises(ConfigError, match="optim.name must be one of adamw, adam, sgd.*'adamw'"):
        load_config(None, ["optim.name=admw"])


def test_pyyaml_traps_are_avoided():
    assert parse_yaml("a: 1e-3\nb: on\nc: off\nd: yes\ne: 5e3\nf: 012") == \
        {"a": 0.001, "b": "on", "c": "off", "d": "yes", "e": 5000.0, "f": "012"}
    config = load_config(None, ["optim.lr=1e-3", "output.run_name=on"])
    assert config.optim.lr == 0.001 and isinstance(config.optim.lr, float)
    assert config.output.run_name == "on"


def test_override_splits_on_the_first_equals_sign():
    assert parse_override("output.run_name=a=b") == ("output", "run_name", "a=b")
    assert parse_override("augment.mean=[0.1, 0.2, 0.3]") == ("augment", "mean", [0.1, 0.2, 0.3])
    assert parse_override("model.pretrained=") == ("model", "pretrained", None)
    with pytest.raises(ConfigError, match="has no '='"):
        parse_override("train.epochs")


def test_overrides_never_evaluate_code():
    config = load_config(None, ["output.run_name=__import__('os').system('false')"])
    assert config.output.run_name == "__import__('os').system('false')"


def test_config_is_read_only():
    config = load_config()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.train.epochs = 3


def test_saved_config_round_trips(tmp_path):
    config = load_config(None, ["optim.lr=3e-4", "augment.crop_scale=[0.5, 1.0]",
                                "train.compare_with=[a, b]", "model.pretrained=w.pdparams"])
    save_config(config, tmp_path / "config.yaml")
    assert load_config(tmp_path / "config.yaml").to_dict() == config.to_dict()


def test_tools_default_to_configs_default_yaml():
    from vit.config import load_default_config

    config = load_default_config(["train.epochs=12"])
    assert config.name == "default" and config.train.epochs == 12
    assert config.to_dict() == load_config(ROOT / "configs" / "default.yaml",
                                            ["train.epochs=12"]).to_dict()


@pytest.mark.parametrize("path", sorted((ROOT / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_loads_and_opens_with_its_command(path):
    load_config(path)
    head = path.read_text().splitlines()[:12]
    assert head[0].startswith("#")
    assert any("python" in line and "tools/train.py" in line for line in head), path


def test_every_key_is_documented():
    text = (ROOT / "docs" / "configs.md").read_text()
    missing = [key for key in all_keys() if f"`{key}`" not in text]
    assert not missing, missing


def test_impossible_combinations_are_refused():
    with pytest.raises(ConfigError, match="must leave some images for training"):
        load_config(None, ["data.val_fraction=0.5", "data.test_fraction=0.5"])
    with pytest.raises(ConfigError, match="augment.mean must be 1 or 3 numbers"):
        load_config(None, ["augment.mean=[0.5, 0.5]"])


def test_bad_override_on_the_command_line_is_one_line():
    result = run_tool("train", "-o", "train.epoch=3")
    assert_one_line_error(result, "unknown key 'train.epoch'", "did you mean 'train.epochs'?")


def test_missing_config_file_is_one_line():
    result = run_tool("train", "-c", "configs/nope.yaml")
    assert_one_line_error(result, "config file 'configs/nope.yaml' does not exist")


def test_a_run_that_changes_only_regularisation_keeps_its_architecture():
    """One list says which model arguments regularise: each is a `model.` key, and resume lets
    every one of them change while any other argument is a different architecture."""
    from vit.config.schema import ModelConfig
    from vit.data.preprocessing import Preprocessing
    from vit.engine.model_record import ModelRecord
    from vit.models import REGULARISATION_ARGS, model_args

    keys = {f.name for f in dataclasses.fields(ModelConfig)} - {"name", "pretrained"}
    assert keys == set(REGULARISATION_ARGS)
    name = "ViT_tiny_patch4_16"
    preprocessing = Preprocessing(16, (0.5,) * 3, (0.5,) * 3, class_names=tuple("abcdefghij"))
    saved = ModelRecord.of(name, model_args(name, num_classes=10), preprocessing)
    changed = model_args(name, num_classes=10, drop_rate=0.1, attn_drop_rate=0.2,
                         drop_path_rate=0.3, zero_head=True)
    assert saved.differences(ModelRecord.of(name, changed, preprocessing)) == []
    assert saved.differences(ModelRecord.of(name, {**changed, "depth": 4}, preprocessing)) == [
        ("depth", "6", "4")]
