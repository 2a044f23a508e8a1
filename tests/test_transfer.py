"""The transfer experiment (`tools/scaling.py --pretrain fractals`): the models pre-train on
generated fractals of growing size, then fine-tune and are probed on digits; the budget grows
with the data, a run that has not learnt its task is marked, and a long plan runs in resumable
stretches with the deciding points first."""

import json
import math

import pytest
import yaml

from conftest import assert_one_line_error, run_tool
from vit.config import load_default_config
from vit.data.sampler import EpochBatchSampler
from vit.engine.transfer import run_transfer
from vit.engine.transfer_plan import (EVALUATIONS, PLANS, converged, last_fifth_gain,
                                      transfer_plan)
from vit.engine.transfer_runs import pretrain_config
from vit.errors import ConfigError


def test_the_pretraining_budget_grows_with_the_data_above_a_floor(tmp_path):
    """One pass over the images but at least `pretrain_steps` steps, in ten evaluated epochs of
    equal length, on the model's input size, the seed drawing both fractals and training."""
    plan = transfer_plan("large", pretrain_steps=1600)
    config = load_default_config()
    for size, classes, steps in ((1_000, 100, 1_600), (100_000, 100, 1_600),
                                 (300_000, 300, 4_688), (1_000_000, 1_000, 15_625)):
        run = pretrain_config(config, plan, "ResNet20", size, 2, tmp_path)
        assert run.train.epochs == EVALUATIONS and run.train.eval_every == 1
        assert run.optim.warmup_steps == steps // 10
        assert run.data.source == "fractals" and run.data.fractal_seed == 2 == run.train.seed
        assert run.data.fractal_classes == classes and run.data.fractal_size == 16
        train_images = round(run.data.fractal_per_class * classes * 0.9)
        assert abs(train_images - size) < classes
        sampler = EpochBatchSampler(train_images, 64, True,
                                    epoch_fraction=run.data.epoch_fraction)
        # the split holds a little more than `size` (images per class are rounded up): as many
        # more steps, and up to one more per epoch
        assert steps <= len(sampler) * EVALUATIONS <= steps * train_images / size + EVALUATIONS
        assert run.model.pretrained is None and run.output.run_name == f"pretrain_ResNet20_n{size}_s2"


def test_the_large_plan_runs_the_deciding_points_first():
    """Seed 1 first; the two largest sizes first, largest first, the small pair then the larger
    one; 10^6 images with one seed, two below; the larger pair only at the two largest."""
    plan = PLANS["large"]
    plan.check()
    points = plan.points()
    small, larger = ("ViT_tiny_patch4_16", "ResNet20"), ("ViT_mini_patch4_16", "ResNet20x2")
    assert points[:8] == [(m, n, 1) for pair in (small, larger) for n in (1_000_000, 300_000)
                          for m in pair]
    assert points[8:14] == [(m, n, 1) for n in (100_000, 10_000, 1_000) for m in small]
    assert points[14:18] == [(m, 300_000, 2) for m in small + larger]
    assert len(points) == 24 and not [p for p in points if p[1] == 1_000_000 and p[2] == 2]
    assert {m for m, n, s in points if n < 300_000} == set(small)
    assert plan.references() == [(m, s) for s in (1, 2) for m in small + larger]


@pytest.mark.parametrize("changes,message", [
    (dict(classes=(100, 1000)), "classes must be one count"),
    (dict(sizes=(50,)), "got 50 images for 100 classes"),
    (dict(larger_models=("ResNet20x2",), larger_sizes=(5,)), "larger_sizes must be some of"),
    (dict(larger_models=("ResNet20x2",)), "larger_sizes must be some of"),
    (dict(larger_models=("ResNet20",), larger_sizes=(1000,)), "a model is named twice"),
])
def test_a_plan_that_cannot_run_says_why(changes, message):
    with pytest.raises(ConfigError, match=message):
        transfer_plan(**changes).check()


def test_an_unknown_plan_names_the_known_ones():
    with pytest.raises(ConfigError, match="unknown plan 'huge'.*default, large"):
        transfer_plan("huge")


def test_a_larger_pair_at_a_smaller_size_is_run_there_too():
    plan = transfer_plan(larger_models=("ViT_mini_patch4_16",), larger_sizes=(1_000,))
    plan.check()
    assert ("ViT_mini_patch4_16", 1_000, 1) in plan.points()


def test_a_run_has_converged_at_090_held_out_or_on_a_plateau():
    """The gain over the last fifth is the last evaluation minus the one at four fifths of the
    steps; a run evaluated only once cannot show a plateau."""
    history = [{"global_step": 10 * e, "val_top1": 0.05 * e} for e in range(1, 11)]
    assert math.isclose(last_fifth_gain(history), 0.1)
    assert last_fifth_gain(history[-1:]) is None
    assert last_fifth_gain([{"global_step": 10}, {"global_step": 100, "val_top1": 0.5}]) is None
    assert converged(0.95, None) and converged(0.5, 0.009)
    assert not converged(0.5, 0.02) and not converged(0.5, None)


def test_a_stretch_stops_a_run_part_of_the_way_and_the_next_continues_it(tmp_path):
    """The library's experiment stops where `stop` says (a stretch's time is up), writes what
    is finished, and the tool's next call continues the stopped run to its full budget; a
    third call trains nothing."""
    out = tmp_path / "transfer"
    plan = transfer_plan(sizes=(24, 48), classes=(4,), pretrain_steps=10, seeds=(1,),
                         finetune_epochs=1, finetune_min_steps=10, shots=(1,), draws=2,
                         fractal_root=str(tmp_path / "fractals"))
    polls = []

    def stop():  # polled before each step, after each optimizer step and at each epoch's end
        polls.append(1)
        return len(polls) >= 5  # after the first step of the second epoch

    config = load_default_config(["optim.warmup_epochs=0"])
    stopped = run_transfer(config, plan, out, stop=stop)
    first = out / "scratch_ViT_tiny_patch4_16_s1"  # the references come first
    assert stopped["stopped"].startswith("stopped at epoch 2, step 3; checkpoint saved")
    assert (first / "checkpoints" / "interrupted.pdparams").is_file()
    assert "test" not in json.loads((first / "metrics.json").read_text())
    partial = json.loads((out / "transfer.json").read_text())
    assert len(partial["missing"]) == 4 + 2
    assert all(not m["points"] for m in partial["models"].values())

    args = ["--pretrain", "fractals", "--sizes", "24", "48", "--classes", "4",
            "--pretrain-steps", "10", "--seeds", "1", "--epochs", "1", "--min-steps", "10",
            "--shots", "1", "--draws", "2", "--fractal-root", tmp_path / "fractals",
            "--output", out, "-o", "optim.warmup_epochs=0"]
    result = run_tool("scaling", *args)
    assert result.returncode == 0, result.stderr
    assert f"{first} stopped part of the way; continuing it" in result.stderr
    history = json.loads((first / "metrics.json").read_text())["history"]
    assert [r["epoch"] for r in history] == list(range(1, 6))
    assert history[-1]["global_step"] == 10  # the whole budget, as without the stop
    pretraining = json.loads((out / "pretrain_ViT_tiny_patch4_16_n48_s1" / "metrics.json")
                             .read_text())["history"]
    assert [r["epoch"] for r in pretraining] == list(range(1, EVALUATIONS + 1))
    assert pretraining[-1]["global_step"] == 20  # 10 epochs of 2 steps (67 of the 50 images)
    results = json.loads((out / "transfer.json").read_text())
    assert results["missing"] == [] and results["finetune_images"] == 117
    assert list(results["models"]) == ["ViT_tiny_patch4_16", "ResNet20"]
    for name, model in results["models"].items():
        assert [p["pretrain_images"] for p in model["points"]] == [24, 48]
        for point in model["points"]:
            assert point["pretrain_steps"] >= 10 and point["classes"] == 4
            assert isinstance(point["converged"], bool) and len(point["last_fifth_gain"]) == 1
            assert 0 <= point["finetune_top1"]["mean"] <= 1
            assert 0 <= point["probe"]["1"]["mean"] <= 1
        assert 0 <= model["scratch_top1"]["mean"] <= 1 and "1" in model["random_probe"]
    fine_tuned = yaml.safe_load((out / "finetune_ResNet20_n24_s1" / "config.yaml").read_text())
    assert fine_tuned["model"]["pretrained"] == str(
        out / "pretrain_ResNet20_n24_s1" / "checkpoints" / "best.pdparams")
    assert fine_tuned["data"]["source"] == "digits" and fine_tuned["data"]["train_fraction"] == 0.1
    assert (out / "transfer.png").stat().st_size > 20_000
    assert "[5/16] pretrain_ViT_tiny_patch4_16_n48_s1 (probe)" in result.stderr
    assert "loaded pretrained weights from" in result.stderr
    assert "Warning" not in result.stderr, result.stderr  # not once per ResNet run
    assert "held-out" in result.stdout and "missing" not in result.stdout

    again = run_tool("scaling", *args)  # everything is finished: nothing is trained again
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("is finished; kept") == 10 and "rendered" not in again.stderr
    assert json.loads((out / "transfer.json").read_text()) == results
    compare = run_tool("compare", first, out / "finetune_ViT_tiny_patch4_16_n24_s1",
                       "--output", tmp_path / "cmp")
    assert compare.returncode == 0, compare.stderr
    other = run_tool("scaling", *args, "--pretrain-steps", "30")  # another budget, same folder
    assert_one_line_error(other, f"{out / 'pretrain_ViT_tiny_patch4_16_n48_s1'} holds a run "
                          "made with other settings "
                          "(data.epoch_fraction, optim.warmup_steps)", "remove that run",
                          after_log=True)
