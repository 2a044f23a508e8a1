"""The from-scratch data-scaling experiment (the question of the paper's Figures 3 and 4, at the
size of a CPU), and the steps the transfer experiment (`transfer.py`) shares with it.

From scratch (`run_scaling`): a ViT and a CNN of similar size trained on growing stratified
shares of one training split, tested on the same test split.

The budget rule: every run sees each of its training images the same number of times
(`epochs`), so compute grows with the data as it does when pre-training on a larger set, but
takes at least `min_steps` optimizer steps, so the smallest shares are not left untrained.
Optimizer, schedule and augmentation are the config's, the same for every run; the config's
warmup is replaced by 10 % of each run's steps. Only the model, the share and the seed change.
Each point is a normal run folder (`tools/compare.py` reads it); a finished point is not trained
again, so an interrupted experiment continues where it stopped.
"""

import dataclasses
import functools
import json
import logging
import math
import shutil
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from ..config import Config, config_from_dict, load_config
from ..data.sources import build_datasets
from ..errors import ConfigError, VitError, param
from ..files import write_text_atomic
from ..models import count_parameters, create_model
from ..progress import Progress
from ..viz import save_figure
from ..viz.training_figures import plot_scaling
from .builders import model_kwargs_from_config
from .checkpoint import newest_complete_checkpoint
from .compare import HOW_NOT_WHAT, setting_differences
from .probe import mean_and_std
from .run_folder import RunFolder
from .run_log import load_metrics
from .trainer import train

log = logging.getLogger(__name__)

Step = Tuple[str, Callable[[], object]]  # (what the progress line says, what it does)


@dataclasses.dataclass(frozen=True)
class ScalingPlan:
    """What the experiment trains.

    Attributes:
        models: registered names; the first is the ViT, the others its baselines.
        fractions: shares of the training split, each stratified (every class kept).
        seeds: one run per seed at every point, for the error bars.
        epochs: passes over its training images of every run (the budget rule) ...
        min_steps: ... but at least this many optimizer steps.
    """

    models: Tuple[str, ...] = ("ViT_tiny_patch4_16", "ResNet20")
    fractions: Tuple[float, ...] = (0.1, 0.3, 1.0)
    seeds: Tuple[int, ...] = (1, 2)
    epochs: int = 30
    min_steps: int = 200

    def check(self):
        if not self.models or not self.fractions or not self.seeds:
            raise ConfigError(f"the scaling experiment needs {param('models')}, "
                              f"{param('fractions')} and {param('seeds')}")
        check_share("fractions", self.fractions)
        check_budget(self.epochs, self.min_steps, "epochs", "min_steps")


def check_share(name: str, shares: Sequence[float]):
    """Raises ConfigError unless every share (parameter `name`) is in (0, 1]."""
    if any(not 0 < share <= 1 for share in shares):
        raise ConfigError(f"{param(name)} must be in (0, 1], got {list(shares)}")


def check_budget(epochs: int, min_steps: int, epochs_name: str, min_steps_name: str):
    """Raises ConfigError unless the budget rule's `epochs` >= 1 and `min_steps` >= 10 (the
    parameters named `epochs_name` and `min_steps_name` of the caller)."""
    if epochs < 1 or min_steps < 10:
        raise ConfigError(f"{param(epochs_name)} must be at least 1 and {param(min_steps_name)} "
                          f"at least 10, got {epochs} and {min_steps}")


def point_config(config: Config, plan: ScalingPlan, model: str, fraction: float, seed: int,
                 train_images: int, output_dir: Path) -> Config:
    """The config of one point: the base config with the model, share, seed and the epochs of
    the budget rule (`plan.epochs`, or more to reach `plan.min_steps` steps)."""
    steps_per_epoch = math.ceil(train_images / config.data.batch_size)
    epochs = max(plan.epochs, math.ceil(plan.min_steps / steps_per_epoch))
    return config_from_dict(config.to_dict(), config.name, "the scaling experiment", [
        f"model.name={model}", f"data.train_fraction={fraction}", f"train.seed={seed}",
        f"train.epochs={epochs}", f"optim.warmup_steps={max(1, epochs * steps_per_epoch // 10)}",
        f"train.eval_every={max(1, epochs // 8)}", "train.resume=null",
        f"output.dir={output_dir}", f"output.run_name={point_name(model, fraction, seed)}"])


def point_name(model: str, fraction: float, seed: int) -> str:
    return f"{model}_f{fraction:g}_s{seed}"


def refuse_label_sets(config: Config):
    """The experiments score test top-1: one class per image.

    Raises:
        ConfigError: a data set of several labels per image.
    """
    if config.data.task != "multiclass":
        raise ConfigError(f"the scaling experiments score test top-1, and this data set has "
                          f"{config.data.task} labels",
                          f"run them on a single-label data set "
                          f"({param('data.task', 'multiclass')})")


def run_scaling(config: Config, plan: ScalingPlan, output_dir,
                progress: Progress = None) -> Dict[str, object]:
    """Train every point of `plan` (skipping finished ones), then write `scaling.json` and
    `scaling.png` into `output_dir`.

    Returns:
        dict with `results` (the JSON's content), `json` and `figure` paths.
    """
    plan.check()
    refuse_label_sets(config)
    output_dir = Path(output_dir)
    sizes, num_classes = {}, 0
    for fraction in plan.fractions:
        bundle = build_datasets(dataclasses.replace(config.data, train_fraction=fraction))
        sizes[fraction], num_classes = len(bundle.splits["train"]), bundle.num_classes
    points = [(m, f, s) for f in plan.fractions for m in plan.models for s in plan.seeds]
    run_steps([(f"{point_name(m, f, s)} ({sizes[f]} images)",
                functools.partial(train_unless_finished,
                                  point_config(config, plan, m, f, s, sizes[f], output_dir)))
               for m, f, s in points], progress)
    results = summarize_points(config, plan, sizes, num_classes, output_dir)
    return save_results(results, output_dir, "scaling", plot_scaling)


def summarize_points(config: Config, plan: ScalingPlan, sizes: Dict[float, int],
                     num_classes: int, output_dir: Path) -> Dict[str, object]:
    """Test top-1 per model and share: every seed, the mean and the sample standard deviation
    (n - 1 in the denominator; 0 for a single seed)."""
    models = {}
    for model in plan.models:
        points = []
        for fraction in plan.fractions:
            scores = [finished_top1(output_dir, point_name(model, fraction, seed))
                      for seed in plan.seeds]
            points.append({"fraction": fraction, "train_images": sizes[fraction],
                           "test_top1": scores, **mean_and_std(scores)})
        models[model] = {"parameters": parameters_of(config, model, num_classes),
                         "points": points}
    return {"source": config.data.source, "epochs": plan.epochs, "min_steps": plan.min_steps,
            "batch_size": config.data.batch_size, "seeds": list(plan.seeds),
            "budget_rule": f"every run takes {plan.epochs} epochs of its training images, and at "
                           f"least {plan.min_steps} optimizer steps; warmup is 10 % of the run's "
                           "steps; optimizer, schedule and augmentation are the config's",
            "models": models}


def format_results(results: Dict[str, object]) -> str:
    """The experiment's table for the terminal: test top-1 mean +- std per model and share."""
    models = results["models"]
    first = next(iter(models.values()))["points"]
    header = f"{'model':<22}{'params':>10}" + "".join(
        f"{p['train_images']:>14}" for p in first)
    lines = [f"test top-1 (mean +- sample std over seeds {results['seeds']}) by training "
             "images",
             header]
    for name, model in models.items():
        lines.append(f"{name:<22}{model['parameters']:>10,}" + "".join(
            f"{p['mean']:>8.4f}+-{p['std']:.3f}" for p in model["points"]))
    return "\n".join(lines)


def default_plan(models: Optional[Sequence[str]] = None, fractions: Optional[List[float]] = None,
                 seeds: Optional[List[int]] = None, epochs: Optional[int] = None,
                 min_steps: Optional[int] = None) -> ScalingPlan:
    """The default plan with any of its fields replaced."""
    plan = ScalingPlan()
    changes = {key: tuple(value) if isinstance(value, list) else value for key, value in
               (("models", models), ("fractions", fractions), ("seeds", seeds),
                ("epochs", epochs), ("min_steps", min_steps)) if value is not None}
    return dataclasses.replace(plan, **changes)


# --- the steps both experiments take ---------------------------------------------------------
def train_unless_finished(config: Config, stop: Optional[Callable[[], bool]] = None):
    """Train the run `config` describes, unless its folder already holds a finished run; a run
    stopped part of the way continues from its newest complete checkpoint (one that has none
    is trained again). `stop`: the trainer's stop request.

    Raises:
        VitError: the folder holds a run made with other settings (another plan's budget), or
            one whose config cannot be read.
    """
    folder = RunFolder.for_config(config)
    if not folder.holds_run():
        train(config, stop=stop)
        return
    _refuse_other_settings(folder, config)
    if folder.has_finished():
        log.info("%s is finished; kept", folder.path)
    elif newest_complete_checkpoint(folder.checkpoints) is None:
        log.warning("%s stopped before its first checkpoint; training it again", folder.path)
        shutil.rmtree(folder.path)
        train(config, stop=stop)
    else:
        log.info("%s stopped part of the way; continuing it", folder.path)
        train(config_from_dict(config.to_dict(), config.name, overrides=[
            f"train.resume={folder.path}"]), stop=stop)


def _refuse_other_settings(folder: RunFolder, config: Config):
    """Raises VitError unless the run in `folder` was made with `config`'s settings (those
    that change what a run learns)."""
    try:
        kept = load_config(folder.config_file).to_dict()
    except (OSError, VitError) as error:
        raise VitError(f"{folder.path} holds a run whose config cannot be read ({error})",
                       "remove that folder to make the run again") from None
    differ = setting_differences([kept, config.to_dict()], HOW_NOT_WHAT)
    if differ:
        raise VitError(f"{folder.path} holds a run made with other settings ({', '.join(differ)})",
                       f"choose another {param('output.dir')}, or remove that run to make it "
                       "again")


def run_steps(steps: Sequence[Step], progress: Progress = None):
    """Take each step in order, saying its stage before it and `done` after the last."""
    for done, (stage, step) in enumerate(steps):
        if progress:
            progress(stage, done, len(steps))
        step()
    if progress:
        progress("done", len(steps), len(steps))


def finished_top1(output_dir: Path, run_name: str) -> float:
    """The test top-1 of the finished run `run_name` under `output_dir`."""
    return load_metrics(output_dir / run_name)["test"]["top1"]


def parameters_of(config: Config, model: str, num_classes: int) -> int:
    """Parameters of `model` built as the config builds it, with `num_classes` outputs."""
    kwargs = model_kwargs_from_config(config_from_dict(
        config.to_dict(), overrides=[f"model.name={model}"]), num_classes)
    return count_parameters(create_model(model, **kwargs))


def save_results(results: Dict[str, object], output_dir: Path, name: str,
                 plot: Callable[[dict], object]) -> Dict[str, object]:
    """Write `results` as `<name>.json` and their figure `plot(results)` as `<name>.png` into
    `output_dir`; returns them with the two paths (`results`, `json`, `figure`)."""
    json_path = write_text_atomic(output_dir / f"{name}.json",
                                  json.dumps(results, indent=1) + "\n")
    figure = save_figure(plot(results), output_dir / f"{name}.png")
    return {"results": results, "json": json_path, "figure": figure}
