"""Comparing runs (vit/engine/compare.py): the config keys on which runs differ, read from
each run folder's recorded config. (The curves and the final-numbers table are checked through
`tools/compare.py` in test_training.py.)"""

import pytest

from vit.config import load_default_config
from vit.engine.compare import NOT_COMPARED, config_differences
from vit.engine.run_folder import RunFolder
from vit.errors import VitError


def _run(tmp_path, name, *overrides) -> RunFolder:
    folder = RunFolder(tmp_path / name)
    folder.create(load_default_config([f"output.dir={tmp_path}", f"output.run_name={name}",
                                       *overrides]))
    return folder


def test_config_differences_lists_the_keys_that_differ_and_never_where_a_run_went(tmp_path):
    first = _run(tmp_path, "first", "train.epochs=6", "optim.lr=0.001")
    second = _run(tmp_path, "second", "train.epochs=8", "optim.lr=0.001",
                  f"train.resume={first.path}")
    third = _run(tmp_path, "third", "train.epochs=6", "optim.lr=0.001",
                 "augment.crop_scale=[0.5, 1.0]")
    assert set(NOT_COMPARED) == {"output.dir", "output.run_name", "train.resume"}
    assert config_differences([first.path, second.path]) == {"train.epochs": [6, 8]}
    differences = config_differences([first.path, second.path, third.path])
    assert list(differences) == ["augment.crop_scale", "train.epochs"]  # the schema's order
    assert differences["train.epochs"] == [6, 8, 6]
    assert differences["augment.crop_scale"][2] == [0.5, 1.0]
    assert config_differences([first.path, first.path]) == {}


def test_config_differences_refuses_a_folder_without_a_recorded_config(tmp_path):
    first = _run(tmp_path, "first")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VitError, match=r"empty has no config\.yaml to compare"):
        config_differences([first.path, tmp_path / "empty"])
