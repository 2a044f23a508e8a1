"""The linear few-shot probe (the paper's Figure 4 measure): perfect on features separable by
construction, near chance on random ones; and a probe run by hand never stands in for the
transfer experiment's."""

import json

import numpy as np

from conftest import ROOT
from vit.config import load_default_config
from vit.engine.probe import least_squares_probe
from vit.engine.transfer_plan import transfer_plan


def test_features_separable_by_construction_are_probed_perfectly_from_one_shot():
    rng = np.random.default_rng(0)
    centres = rng.standard_normal((10, 32)) * 5
    labels = np.arange(10)
    train = centres[labels] + rng.standard_normal((10, 32)) * 0.1  # one image per class
    test_labels = np.repeat(labels, 30)
    test = centres[test_labels] + rng.standard_normal((300, 32)) * 0.1
    assert least_squares_probe(train, labels, test, test_labels, 10) == 1.0


def test_random_features_stay_near_chance():
    rng = np.random.default_rng(1)
    scores = [least_squares_probe(rng.standard_normal((50, 64)), np.repeat(np.arange(10), 5),
                                  rng.standard_normal((500, 64)), rng.integers(0, 10, 500), 10)
              for _ in range(5)]
    assert 0.05 < np.mean(scores) < 0.16  # chance is 0.1


def test_a_probe_run_by_hand_leaves_the_transfer_experiments_cached_probe_alone(
        tmp_path, monkeypatch):
    """tools/probe.py on a pre-training run of the transfer experiment writes beside the run,
    never the `probe/probe.json` the experiment reuses; with the experiment's seed and images
    (docs/scaling.md's command) it gives the experiment's numbers; and the experiment keeps
    its own probe, but probes again where another probe was written into its folder."""
    from vit.cli import probe as probe_tool
    from vit.engine import transfer_runs
    from vit.engine.trainer import train

    monkeypatch.setattr(probe_tool, "setup_logging", lambda: None)  # the test's, not a CLI's
    config = load_default_config(["optim.warmup_epochs=0"])
    plan = transfer_plan(models=["ResNet20"], sizes=[24], classes=[4], pretrain_steps=10,
                         shots=[1, 2], draws=2, fractal_root=str(tmp_path / "fractals"))
    out = tmp_path / "transfer"
    train(transfer_runs.pretrain_config(config, plan, "ResNet20", 24, 1, out))
    transfer_runs.probe_pretrained(config, plan, "ResNet20", 24, 1, 117, out)
    cached = transfer_runs.probe_file(out, "ResNet20", 24, 1)
    experiments = json.loads(cached.read_text())
    assert experiments["seed"] == 1 and experiments["train_images"] == 117
    run = out / "pretrain_ResNet20_n24_s1"
    assert probe_tool.default_output(run / "checkpoints" / "best.pdparams") == run / "probe_best"

    digits = ["-c", str(ROOT / "configs" / "default.yaml"), "-o", "model.name=ResNet20"]
    assert probe_tool.main(["--weights", str(run), "--shots", "1", "2", *digits]) == 0
    assert json.loads(cached.read_text()) == experiments  # untouched
    by_hand = json.loads((run / "probe_best" / "probe.json").read_text())
    assert by_hand["seed"] == 0 and by_hand["train_images"] == 1168
    assert probe_tool.main(["--weights", str(run), "--shots", "1", "2", "--draws", "2",
                            "--seed", "1", *digits, "-o", "data.train_fraction=0.1"]) == 0
    assert json.loads((run / "probe_best" / "probe.json").read_text()) == experiments

    def no_probe(*args, **kwargs):
        raise AssertionError("the experiment probed again instead of keeping its probe")

    with monkeypatch.context() as patched:
        patched.setattr(transfer_runs, "few_shot_accuracy", no_probe)
        transfer_runs.probe_pretrained(config, plan, "ResNet20", 24, 1, 117, out)  # kept
    assert probe_tool.main(["--weights", str(run), "--shots", "1", "2", *digits,
                            "--output", str(cached.parent)]) == 0  # by hand, into its folder
    assert json.loads(cached.read_text())["seed"] == 0
    transfer_runs.probe_pretrained(config, plan, "ResNet20", 24, 1, 117, out)
    assert json.loads(cached.read_text()) == experiments  # probed again, not kept
