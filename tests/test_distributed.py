"""Data parallelism with Paddle's own engine: two CPU processes (gloo) under
paddle.distributed.launch average their gradients and match one process of the same global
batch."""

import json
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, run_tool

WORKER = ROOT / "tests" / "ddp_worker.py"


def launch(*args, cwd, timeout=600):
    return subprocess.run([sys.executable, "-m", "paddle.distributed.launch", "--nproc_per_node",
                           "2", "--log_dir", str(cwd / "log"), *map(str, args)],
                          cwd=cwd, capture_output=True, text=True, timeout=timeout)


def test_two_cpu_processes_equal_one_process_with_the_same_global_batch(tmp_path):
    result = launch(WORKER, tmp_path, 32, cwd=tmp_path)
    logs = "\n".join(p.read_text() for p in (tmp_path / "log").glob("workerlog.*"))
    assert result.returncode == 0, result.stdout + result.stderr + logs
    single = subprocess.run([sys.executable, str(WORKER), str(tmp_path), "32"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600)
    assert single.returncode == 0, single.stderr
    rank0, rank1, one = (np.load(tmp_path / f"{n}.npz") for n in ("rank0", "rank1", "single"))
    assert int(rank0["steps"]) == int(one["steps"]) == 4  # 126 images, global batch 32
    for key in one.files:
        # gradients were averaged: both ranks hold the very same parameters
        np.testing.assert_array_equal(rank0[key], rank1[key], err_msg=key)
        # and they are what one process computes from the same 32-image batches
        np.testing.assert_allclose(rank0[key], one[key], rtol=1e-4, atol=2e-5, err_msg=key)


@pytest.mark.parametrize("task", ["multiclass", "multilabel"])
def test_train_tool_under_the_launcher_writes_one_run_folder(tmp_path, task):
    """Each rank scores its share of the test split: the figures added (multiclass: top-1 and
    the per-class sums of balanced accuracy) or the outputs gathered (multilabel: mAP needs
    them all, at the thresholds rank 0's best checkpoint records) equal one process's
    evaluation of that checkpoint. The multiclass run draws class-balanced batches."""
    options = (["-o", "data.train_fraction=0.25", "-o", "data.sampler=balanced"]
               if task == "multiclass" else
               ["-c", ROOT / "configs" / "multilabel_digits.yaml", "-o", "data.train_fraction=0.05"])
    result = launch(ROOT / "tools" / "train.py", *options,
                    "-o", "data.batch_size=16", "-o", "train.epochs=1",
                    "-o", "optim.warmup_epochs=0", "-o", f"output.dir={tmp_path / 'out'}",
                    "-o", "output.run_name=ddp", cwd=tmp_path)
    logs = "\n".join(p.read_text() for p in (tmp_path / "log").glob("workerlog.*"))
    assert result.returncode == 0, logs
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["ddp"]
    metrics = json.loads((tmp_path / "out" / "ddp" / "metrics.json").read_text())
    assert len(metrics["history"]) == 1
    assert metrics["test"]["num_samples"] == (359 if task == "multiclass" else 718)
    assert "cpu x2" in logs
    single = run_tool("infer", "--weights", tmp_path / "out" / "ddp", "--eval",
                      "--output", tmp_path / "eval")
    assert single.returncode == 0, single.stderr
    alone = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    for key in (("top1", "balanced_accuracy") if task == "multiclass" else ("map", "exact_match")):
        assert abs(metrics["test"][key] - alone[key]) < 1e-6, key
