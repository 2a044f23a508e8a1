"""Loading pretrained weights without any reference library: adapting to other inputs (one
channel, another patch size, another class count), strict refusals with a table, safe loading of
pickles, and safetensors."""

import json
import os
import pickle

import numpy as np
import paddle
import pytest

from conftest import assert_one_line_error, run_tool
from vit import CheckpointError
from vit.models import create_model
from vit.models.convert import read_weights
from vit.models.weights import load_pretrained
from vit.serialization import load_safetensors, safe_load, save, save_safetensors


def test_rgb_weights_serve_a_one_channel_model(tmp_path):
    with paddle.utils.unique_name.guard():
        rgb = create_model("ViT_tiny_patch4_16", num_classes=10)
    rgb.eval()
    gray = create_model("ViT_tiny_patch4_16", num_classes=10, in_chans=1)
    gray.eval()
    save(rgb.state_dict(), tmp_path / "rgb.pdparams")
    notes = load_pretrained(gray, tmp_path / "rgb.pdparams")
    assert any("summed over the colour channels" in n for n in notes)
    channel = paddle.rand([2, 1, 16, 16])
    with paddle.no_grad():
        np.testing.assert_allclose(gray(channel).numpy(), rgb(channel.tile([1, 3, 1, 1])).numpy(),
                                   atol=1e-5)


def test_patch_size_change_resizes_the_kernel(tmp_path):
    with paddle.utils.unique_name.guard():
        source = create_model("ViT_tiny_patch4_16", num_classes=10)
    save(source.state_dict(), tmp_path / "p4.pdparams")
    target = create_model("ViT_tiny_patch4_16", num_classes=10, patch_size=8)
    notes = load_pretrained(target, tmp_path / "p4.pdparams")
    assert any("patch kernel resized from 4 to 8" in n for n in notes)
    assert any("resampled from 16 to 4 patches" in n for n in notes)
    target.eval()
    assert target(paddle.rand([1, 3, 16, 16])).shape == [1, 10]


def test_other_class_count_resets_only_the_head_to_zero(tmp_path):
    with paddle.utils.unique_name.guard():
        source = create_model("ViT_tiny_patch4_16", num_classes=10)
    save(source.state_dict(), tmp_path / "w.pdparams")
    target = create_model("ViT_tiny_patch4_16", num_classes=4)
    notes = load_pretrained(target, tmp_path / "w.pdparams")
    assert notes == ["head re-initialised to zeros for 4 classes"]
    assert not target.head.weight.numpy().any()
    np.testing.assert_array_equal(target.blocks[2].mlp.fc1.weight.numpy(),
                                  source.blocks[2].mlp.fc1.weight.numpy())


def test_anything_else_that_does_not_fit_is_a_table_and_a_refusal(tmp_path):
    with paddle.utils.unique_name.guard():
        source = create_model("ViT_tiny_patch4_16", num_classes=10)
    save(source.state_dict(), tmp_path / "w.pdparams")
    target = create_model("ViT_tiny_patch4_16", num_classes=10, depth=4, embed_dim=64)
    with pytest.raises(CheckpointError) as error:
        load_pretrained(target, tmp_path / "w.pdparams")
    assert "w.pdparams does not fit the model" in str(error.value)
    table = error.value.details.splitlines()
    assert table[0].split() == ["key", "in", "the", "weights", "in", "the", "model"]
    assert any(row.split() == ["blocks.5.attn.qkv.weight", "[64,", "192]", "absent"]
               for row in table), table


class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_malicious_pickle_is_refused_before_anything_runs(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pdparams"
    path.write_bytes(pickle.dumps({"pos_embed": np.zeros((1, 2, 3)), "x": _Exploit(marker)}))
    with pytest.raises(CheckpointError, match=r"asks to run posix.system while loading; refused"):
        safe_load(path)
    assert not marker.exists()
    result = run_tool("train", "--pretrained", path, "-o", "train.epochs=1",
                      "-o", "optim.warmup_epochs=0", "-o", f"output.dir={tmp_path / 'out'}")
    assert_one_line_error(result, "refused", after_log=True)
    assert not marker.exists()


def test_pth_without_torch_says_so_in_one_line(tmp_path, monkeypatch):
    import sys

    path = tmp_path / "w.pth"
    path.write_bytes(b"whatever")
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(CheckpointError, match="is a PyTorch file and reading it needs torch"):
        read_weights(path)


def test_safetensors_round_trip_with_metadata(tmp_path):
    state = {"a": np.arange(6, dtype="float32").reshape(2, 3)}
    save_safetensors(state, tmp_path / "w.safetensors", {"model": json.dumps({"depth": 2})})
    loaded, meta = load_safetensors(tmp_path / "w.safetensors")
    np.testing.assert_array_equal(loaded["a"], state["a"])
    assert json.loads(meta["model"]) == {"depth": 2}
