"""The transfer experiment (`tools/scaling.py --pretrain fractals`): both models pre-train on
generated fractals of growing size, then fine-tune and are probed on digits."""

import json

import yaml

from conftest import run_tool
from vit.config import load_default_config
from vit.engine.transfer_runs import pretrain_config, transfer_plan


def test_the_pretraining_budget_is_steps_not_epochs(tmp_path):
    """Every size takes about `pretrain_steps` steps in whole epochs (at least one), on the
    model's input size, with the seed drawing both the fractals and the training."""
    plan = transfer_plan(pretrain_steps=1600)
    config = load_default_config()
    for size, epochs in ((1_000, 100), (10_000, 10), (100_000, 1)):
        run = pretrain_config(config, plan, "ResNet20", size, 2, tmp_path)
        assert run.train.epochs == epochs
        assert run.data.source == "fractals" and run.data.fractal_seed == 2 == run.train.seed
        assert run.data.fractal_classes == 100 and run.data.fractal_size == 16
        train_share = 1 - run.data.val_fraction - run.data.test_fraction
        assert abs(run.data.fractal_per_class * 100 * train_share - size) < 100
        assert run.model.pretrained is None and run.output.run_name == f"pretrain_ResNet20_n{size}_s2"


def test_a_tiny_transfer_plan_runs_end_to_end_and_keeps_finished_work(tmp_path):
    args = ["--pretrain", "fractals", "--sizes", "24", "48", "--classes", "4",
            "--pretrain-steps", "10", "--seeds", "1", "--epochs", "1", "--min-steps", "10",
            "--shots", "1", "--draws", "2", "--fractal-root", tmp_path / "fractals",
            "--output", tmp_path / "transfer", "-o", "optim.warmup_epochs=0"]
    result = run_tool("scaling", *args)
    assert result.returncode == 0, result.stderr
    out = tmp_path / "transfer"
    results = json.loads((out / "transfer.json").read_text())
    assert list(results["models"]) == ["ViT_tiny_patch4_16", "ResNet20"]
    assert results["finetune_images"] == 117 and results["shots"] == [1]
    for name, model in results["models"].items():
        assert [p["pretrain_images"] for p in model["points"]] == [24, 48]
        for point in model["points"]:
            assert point["pretrain_steps"] >= 10
            assert 0 <= point["finetune_top1"]["mean"] <= 1
            assert 0 <= point["probe"]["1"]["mean"] <= 1
        assert 0 <= model["scratch_top1"]["mean"] <= 1 and "1" in model["random_probe"]
        for folder in (f"pretrain_{name}_n24_s1", f"finetune_{name}_n48_s1",
                       f"scratch_{name}_s1"):
            assert (out / folder / "metrics.json").is_file(), folder
    fine_tuned = yaml.safe_load((out / "finetune_ResNet20_n24_s1" / "config.yaml").read_text())
    assert fine_tuned["model"]["pretrained"] == str(
        out / "pretrain_ResNet20_n24_s1" / "checkpoints" / "best.pdparams")
    assert fine_tuned["data"]["source"] == "digits" and fine_tuned["data"]["train_fraction"] == 0.1
    assert (out / "transfer.png").stat().st_size > 20_000
    assert "[0/16] scratch_ViT_tiny_patch4_16_s1 (from scratch)" in result.stderr
    assert "loaded pretrained weights from" in result.stderr
    assert "Warning" not in result.stderr, result.stderr  # not once per ResNet run
    again = run_tool("scaling", *args)  # everything is finished: nothing is trained again
    assert again.returncode == 0, again.stderr
    assert again.stderr.count("is finished; kept") == 10 and "rendered" not in again.stderr
    assert json.loads((out / "transfer.json").read_text()) == results
    compare = run_tool("compare", out / "pretrain_ViT_tiny_patch4_16_n24_s1",
                       out / "finetune_ViT_tiny_patch4_16_n24_s1", "--output", tmp_path / "cmp")
    assert compare.returncode == 0, compare.stderr
