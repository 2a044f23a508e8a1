"""Training end to end: the run folder, VisualDL, figures, resume after SIGKILL and SIGINT,
refusals, a non-finite loss, and comparison plots."""

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, assert_one_line_error, run_tool
from vit.serialization import safe_load

# A small, quick run: a quarter of the digits training split, 3 epochs.
QUICK = ["-o", "data.train_fraction=0.25", "-o", "data.batch_size=32", "-o", "train.epochs=3",
         "-o", "train.log_every=2", "-o", "optim.warmup_epochs=1"]


def train_args(out, name, *extra):
    return [*QUICK, "-o", f"output.dir={out}", "-o", f"output.run_name={name}", *extra]


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    result = run_tool("train", *train_args(out, "reference"))
    assert result.returncode == 0, result.stderr
    return out / "reference", result


def test_a_run_writes_metrics_checkpoints_figures_and_logs(finished_run):
    run, result = finished_run
    metrics = json.loads((run / "metrics.json").read_text())
    assert [r["epoch"] for r in metrics["history"]] == [1, 2, 3]
    for key in ("epoch", "train_loss", "val_loss", "val_top1", "val_top5", "lr", "seconds"):
        assert key in metrics["history"][0]
    assert metrics["best_val_top1"] == max(r["val_top1"] for r in metrics["history"])
    assert metrics["history"][-1]["train_loss"] < metrics["history"][0]["train_loss"]
    assert 0 <= metrics["test"]["top1"] <= 1 and metrics["test"]["num_samples"] == 359
    for name in ("loss.png", "accuracy.png", "data_class_histogram.png"):
        with Image.open(run / "figures" / name) as figure:
            assert figure.size[0] > 300
    checkpoints = run / "checkpoints"
    assert (checkpoints / "best.pdparams").is_file() and (checkpoints / "best.json").is_file()
    assert sorted(p.name for p in checkpoints.glob("epoch_*.pdparams")) == \
        ["epoch_002.pdparams", "epoch_003.pdparams"]  # train.keep_checkpoints=2
    for name in ("config.yaml", "stats.json", "train.log"):
        assert (run / name).is_file(), name
    assert f"visualdl --logdir {run / 'vdl'}" in result.stdout


def test_visualdl_reader_reads_the_scalars_back(finished_run):
    from visualdl import LogReader

    run, _ = finished_run
    metrics = json.loads((run / "metrics.json").read_text())
    logfile = next((run / "vdl").glob("vdlrecords.*.log"))
    reader = LogReader(file_path=str(logfile))
    top1 = reader.get_data("scalar", "val/top1")
    assert [round(r.value, 5) for r in top1] == [round(h["val_top1"], 5) for h in metrics["history"]]
    losses = reader.get_data("scalar", "train/loss")
    assert [r.id for r in losses] == [s[0] for s in metrics["steps"]]
    assert len(reader.get_data("scalar", "train/lr")) == len(losses)


def _final_weights(run):
    return safe_load(sorted((run / "checkpoints").glob("epoch_*.pdparams"))[-1])


def _assert_same_run(run, reference):
    ours, theirs = _final_weights(run), _final_weights(reference)
    assert set(ours) == set(theirs)
    for key in theirs:
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=key)
    mine = json.loads((run / "metrics.json").read_text())
    ref = json.loads((reference / "metrics.json").read_text())
    for a, b in zip(mine["history"], ref["history"]):
        for key in ("train_loss", "val_loss", "val_top1", "val_top5", "lr"):
            assert a[key] == b[key], (key, a, b)
    assert mine["test"] == ref["test"]


def _steps_per_epoch(reference: Path) -> int:
    return json.loads((reference / "metrics.json").read_text())["history"][0]["global_step"]


def _start_held(out, name, epoch, batch):
    """tools/train.py, held still once batch `batch` of epoch `epoch` is trained
    (tests/held_train.py); returns the process once it is there, so that a signal lands at a
    step the test knows."""
    marker = out / f"{name}.held"
    process = subprocess.Popen([sys.executable, str(ROOT / "tests" / "held_train.py"), str(epoch),
                                str(batch), str(marker), *train_args(out, name)], cwd=ROOT,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600  # only decides when to give up
    while not marker.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "the run never reached its hold"
        time.sleep(0.05)
    return process


def test_sigkill_mid_epoch_then_resume_equals_an_uninterrupted_run(tmp_path, finished_run):
    reference, _ = finished_run
    steps = _steps_per_epoch(reference)
    assert steps >= 4, "the held step must be inside epoch 2"
    process = _start_held(tmp_path, "killed", 2, 2)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    checkpoints = tmp_path / "killed" / "checkpoints"
    assert (checkpoints / "epoch_001.json").is_file()
    assert not (checkpoints / "epoch_002.json").exists()
    assert not (checkpoints / "interrupted.json").exists()
    result = run_tool("train", *train_args(tmp_path, "killed"),
                      "-o", f"train.resume={tmp_path / 'killed'}")
    assert result.returncode == 0, result.stderr
    assert "resuming from" in result.stderr and "epoch 2, step " + str(steps) in result.stderr
    _assert_same_run(tmp_path / "killed", reference)


def test_sigint_saves_a_checkpoint_and_resume_is_exact(tmp_path, finished_run):
    reference, _ = finished_run
    steps = _steps_per_epoch(reference)
    assert steps >= 4, "the held step and the next must be inside epoch 2"
    process = _start_held(tmp_path, "stopped", 2, 2)
    held = steps + 2
    process.send_signal(signal.SIGINT)  # handled while the run is held after step `held`
    _, stderr = process.communicate("go on\n", timeout=600)
    assert process.returncode == 2, stderr
    assert "resume with -o train.resume=" in stderr and "Traceback" not in stderr
    # the stop request is seen at the next step's check: the checkpoint holds that position
    stopped = re.search(r"stopped at epoch (\d), step (\d+); checkpoint saved as (\S+)", stderr)
    assert stopped and stopped[1] == "2" and int(stopped[2]) == held + 1, stderr
    meta = json.loads(Path(stopped[3]).with_suffix(".json").read_text())
    assert meta["tag"] == "interrupted" and meta["global_step"] == held + 1
    assert meta["epoch"] == 1 and meta["batch_in_epoch"] == held + 1 - steps
    assert not (tmp_path / "stopped" / "checkpoints" / "epoch_002.json").exists()
    result = run_tool("train", *train_args(tmp_path, "stopped"),
                      "-o", f"train.resume={tmp_path / 'stopped'}")
    assert result.returncode == 0, result.stderr
    _assert_same_run(tmp_path / "stopped", reference)


def test_resuming_into_another_architecture_is_refused_with_a_table(finished_run, tmp_path):
    run, _ = finished_run
    result = run_tool("train", *train_args(tmp_path, "other"), "-o", "model.name=ViT_tiny_patch4_32",
                      "-o", f"train.resume={run}")
    rows = assert_one_line_error(result, "cannot resume from",
                                 "model ViT_tiny_patch4_16 vs ViT_tiny_patch4_32", table=True,
                                 after_log=True)
    assert ["model", "ViT_tiny_patch4_16", "ViT_tiny_patch4_32"] in rows
    assert ["embed_dim", "64", "192"] in rows


def test_resuming_from_a_checkpoint_with_a_missing_tensor_is_refused_with_a_table(finished_run,
                                                                                  tmp_path):
    import shutil

    from vit.engine.checkpoint import load_checkpoint, save_checkpoint

    run = tmp_path / "damaged"
    shutil.copytree(finished_run[0], run)
    newest = sorted((run / "checkpoints").glob("epoch_*.pdparams"))[-1]
    weights, meta, training = load_checkpoint(newest, with_training_state=True)
    del weights["blocks.3.mlp.fc2.bias"]  # a checkpoint written by other code, complete on disk
    save_checkpoint(newest.parent, newest.stem, weights, meta, training)
    result = run_tool("train", *train_args(tmp_path, "damaged"), "-o", "train.epochs=4",
                      "-o", f"train.resume={run}")
    rows = assert_one_line_error(result, f"{newest} does not fit the model", table=True,
                                 after_log=True)
    assert ["blocks.3.mlp.fc2.bias", "missing", "[64]"] in rows


def test_non_finite_loss_stops_with_epoch_and_step_and_keeps_the_checkpoint(tmp_path):
    first = run_tool("train", *train_args(tmp_path, "nan"), "-o", "train.epochs=1",
                     "-o", "optim.warmup_epochs=0")
    assert first.returncode == 0, first.stderr
    # continue for a second epoch on infinite inputs (divided by a denormal std): NaN at once
    result = run_tool("train", *train_args(tmp_path, "nan"), "-o", "train.epochs=2",
                      "-o", "optim.warmup_epochs=0", "-o", f"train.resume={tmp_path / 'nan'}",
                      "-o", "augment.std=[1e-45]")
    line = assert_one_line_error(result, "the loss became", "at epoch 2, step", after_log=True)
    assert "lower optim.lr" in line
    assert (tmp_path / "nan" / "checkpoints" / "epoch_001.pdparams").is_file()
    assert not (tmp_path / "nan" / "checkpoints" / "epoch_002.pdparams").exists()


def test_compare_tool_overlays_two_runs(finished_run, tmp_path):
    run, _ = finished_run
    # the second run also exercises the trainer's own comparison, EMA, and AMP on a CPU
    second = run_tool("train", *train_args(tmp_path, "second"), "-o", "optim.lr=3e-3",
                      "-o", f"train.compare_with=[{run}]", "-o", "train.ema_decay=0.9",
                      "-o", "train.amp=bf16")
    assert second.returncode == 0, second.stderr
    assert "train.amp=bf16 needs a GPU; training in float32 on the CPU" in second.stderr
    assert (tmp_path / "second" / "figures" / "comparison.png").is_file()
    assert json.loads((tmp_path / "second" / "checkpoints" / "best.json").read_text())["ema"]
    result = run_tool("compare", run, tmp_path / "second", "--output", tmp_path / "cmp")
    assert result.returncode == 0, result.stderr
    assert "reference" in result.stdout and "second" in result.stdout
    differences = {line.split()[0]: line.split()[1:] for line in
                   result.stdout.split("key  ", 1)[1].splitlines()[1:] if line.strip()
                   and not line.startswith("figure") and not line.startswith("table")}
    assert differences["train.ema_decay"][1] == "0.9" and differences["train.amp"][1] == "bf16"
    assert "output.run_name" not in differences and "data.batch_size" not in differences
    with Image.open(tmp_path / "cmp" / "comparison.png") as figure:
        pixels = np.asarray(figure.convert("RGB"))
    assert figure.size[0] > 600
    # both runs' line colours (matplotlib C0 blue and C1 orange) are drawn
    assert (np.abs(pixels.astype(int) - [31, 119, 180]).sum(-1) < 30).sum() > 50
    assert (np.abs(pixels.astype(int) - [255, 127, 14]).sum(-1) < 30).sum() > 50
    assert (tmp_path / "cmp" / "comparison.csv").read_text().count("\n") == 3


def test_a_resnet_trains_on_files_without_warnings_and_its_checkpoint_fine_tunes(tmp_path):
    """Paddle's BatchNorm warns on every training forward that it tracks running statistics
    (what the model wants); Python shows it once only until a filter changes, so it is
    silenced where the model is defined.
    The checkpoint then starts another run through --pretrained, as a ViT's does: a new class
    count gets a fresh head; a model of another architecture is refused with the table."""
    rng = np.random.default_rng(0)
    for index in range(64):
        path = tmp_path / "images" / f"c{index % 2}" / f"{index}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(path)
    result = run_tool("train", "-o", "model.name=ResNet20", "-o", "data.source=folder",
                      "-o", f"data.root={tmp_path / 'images'}", "-o", "data.image_size=16",
                      "-o", "data.batch_size=8", "-o", "train.epochs=2",
                      "-o", "optim.warmup_epochs=0", "-o", f"output.dir={tmp_path / 'out'}")
    assert result.returncode == 0, result.stderr
    assert "Warning" not in result.stderr, result.stderr
    checkpoint = next((tmp_path / "out").glob("*/checkpoints/best.pdparams"))
    tuned = run_tool("train", *train_args(tmp_path / "out", "tuned"), "-o", "train.epochs=1",
                     "-o", "optim.warmup_epochs=0", "-o", "model.name=ResNet20",
                     "--pretrained", checkpoint)
    assert tuned.returncode == 0, tuned.stderr
    assert "head re-initialised to zeros for 10 classes" in tuned.stderr
    refused = run_tool("train", *train_args(tmp_path / "out", "vit"), "-o", "train.epochs=1",
                       "-o", "optim.warmup_epochs=0", "--pretrained", checkpoint)
    rows = assert_one_line_error(refused, f"{checkpoint} does not fit the model", table=True,
                                 after_log=True)
    assert ["blocks.0.attn.qkv.weight", "missing", "[64,", "192]"] in rows


def test_a_run_stopped_in_a_process_that_trained_before_resumes_in_a_fresh_one(tmp_path):
    """Paddle names the optimizer's moments by a per-process count, so a run stopped in a
    process that had trained another model first (an experiment, the app) saved moments a fresh
    process looked for under other names ('conv2d_0.w_0_moment1_0 should in state dict'). Every
    run now counts from zero."""
    from vit.config import load_default_config
    from vit.engine.trainer import TrainingInterrupted, train

    quick = ["data.train_fraction=0.25", "train.epochs=2", "optim.warmup_epochs=0",
             f"output.dir={tmp_path}", "model.name=ResNet20"]
    train(load_default_config(quick + ["output.run_name=first"]))
    polls = []
    with pytest.raises(TrainingInterrupted):
        train(load_default_config(quick + ["output.run_name=second"]),
              stop=lambda: polls.append(1) or len(polls) > 3)
    result = run_tool("train", *[arg for key in quick for arg in ("-o", key)], "-o",
                      f"train.resume={tmp_path / 'second'}")
    assert result.returncode == 0, result.stderr
    assert "test (best checkpoint)" in result.stderr + result.stdout
