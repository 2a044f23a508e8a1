"""The two data-scaling experiments (the question of the paper's Figures 3 and 4, at the size of
a CPU):

- from scratch (`run_scaling`): a ViT and a CNN of similar size trained on growing stratified
  shares of one training split, tested on the same test split;
- transfer (`run_transfer`, below): both pre-trained on growing sets of generated fractals,
  then fine-tuned on a small share of the data set and probed linearly with frozen features.

The from-scratch budget rule: every run sees each of its training images the same number of times (`epochs`),
so compute grows with the data as it does when pre-training on a larger set, but takes at least
`min_steps` optimizer steps, so the smallest shares are not left untrained. Optimizer, schedule
and augmentation are the config's, the same for every run; the config's warmup is replaced by
10 % of each run's steps. Only the model, the share and the seed change. Each point is a
normal run folder (`tools/compare.py` reads it); a finished point is not trained again, so an
interrupted experiment continues where it stopped.
"""

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from ..config import Config, config_from_dict
from ..data.sources import build_datasets
from ..errors import ConfigError
from ..files import write_text_atomic
from ..models import count_parameters, create_model
from ..progress import Progress
from ..viz import save_figure
from ..viz.training_figures import plot_scaling, plot_transfer
from .builders import model_kwargs_from_config, resolve_image_size
from .probe import few_shot_accuracy, mean_and_std, probe_features
from .run_log import load_metrics
from .trainer import train

log = logging.getLogger(__name__)


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
            raise ConfigError("the scaling experiment needs models, fractions and seeds")
        if any(not 0 < f <= 1 for f in self.fractions):
            raise ConfigError(f"fractions must be in (0, 1], got {list(self.fractions)}")
        if self.epochs < 1 or self.min_steps < 10:
            raise ConfigError(f"--epochs must be at least 1 and --min-steps at least 10, got "
                              f"{self.epochs} and {self.min_steps}")


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


def run_scaling(config: Config, plan: ScalingPlan, output_dir,
                progress: Progress = None) -> Dict[str, object]:
    """Train every point of `plan` (skipping finished ones), then write `scaling.json` and
    `scaling.png` into `output_dir`.

    Returns:
        dict with `results` (the JSON's content), `json` and `figure` paths.
    """
    plan.check()
    output_dir = Path(output_dir)
    sizes, num_classes = {}, 0
    for fraction in plan.fractions:
        bundle = build_datasets(dataclasses.replace(config.data, train_fraction=fraction))
        sizes[fraction], num_classes = len(bundle.splits["train"]), bundle.num_classes
    points = [(m, f, s) for f in plan.fractions for m in plan.models for s in plan.seeds]
    for done, (model, fraction, seed) in enumerate(points):
        if progress:
            progress(f"{point_name(model, fraction, seed)} ({sizes[fraction]} images)", done,
                     len(points))
        _train_unless_finished(point_config(config, plan, model, fraction, seed,
                                            sizes[fraction], output_dir))
    if progress:
        progress("done", len(points), len(points))
    results = summarize_points(config, plan, sizes, num_classes, output_dir)
    json_path = output_dir / "scaling.json"
    json_path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    figure = save_figure(plot_scaling(results), output_dir / "scaling.png")
    return {"results": results, "json": json_path, "figure": figure}


def _finished(run_dir: Path) -> bool:
    try:
        return "test" in load_metrics(run_dir)
    except Exception:  # absent or half-written: train it (again)
        return False


def _train_unless_finished(config: Config):
    """Train the run `config` describes, unless its folder already holds a finished run."""
    run_dir = Path(config.output.dir) / config.output.run_name
    if _finished(run_dir):
        log.info("%s is finished; kept", run_dir)
        return
    train(config)


def summarize_points(config: Config, plan: ScalingPlan, sizes: Dict[float, int],
                     num_classes: int, output_dir: Path) -> Dict[str, object]:
    """Test top-1 per model and share: every seed, the mean and the sample standard deviation
    (n - 1 in the denominator; 0 for a single seed)."""
    models = {}
    for model in plan.models:
        points = []
        for fraction in plan.fractions:
            scores = [load_metrics(output_dir / point_name(model, fraction, seed))["test"]["top1"]
                      for seed in plan.seeds]
            points.append({"fraction": fraction, "train_images": sizes[fraction],
                           "test_top1": scores, **mean_and_std(scores)})
        models[model] = {"parameters": _parameters(config, model, num_classes),
                         "points": points}
    return {"source": config.data.source, "epochs": plan.epochs, "min_steps": plan.min_steps,
            "batch_size": config.data.batch_size, "seeds": list(plan.seeds),
            "budget_rule": f"every run takes {plan.epochs} epochs of its training images, and at "
                           f"least {plan.min_steps} optimizer steps; warmup is 10 % of the run's "
                           "steps; optimizer, schedule and augmentation are the config's",
            "models": models}


def _parameters(config: Config, model: str, num_classes: int) -> int:
    """Parameters of `model` built as the config builds it, with `num_classes` outputs."""
    kwargs = model_kwargs_from_config(config_from_dict(
        config.to_dict(), overrides=[f"model.name={model}"]), num_classes)
    return count_parameters(create_model(model, **kwargs))


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


# --- the transfer experiment: pre-train on growing generated data, then transfer ------------
PRETRAIN_HELD_OUT = 0.05  # val and test shares of the generated images (of every class)


@dataclasses.dataclass(frozen=True)
class TransferPlan:
    """What the transfer experiment runs (the question of the paper's Figures 3 and 4).

    Attributes:
        models: registered names; the first is the ViT, the others its baselines.
        sizes: pre-training images (the training split of the generated set) per point.
        classes: fractal classes at every size (the paper's JFT subsets share one label set).
        pretrain_steps: optimizer steps of every pre-training run, whatever its size (the
            budget rule: a larger set buys variety, not compute), at least one epoch.
        seeds: one run per seed at every point; the seed also draws the fractals.
        finetune_fraction: share of the downstream training split that fine-tuning sees.
        finetune_epochs, finetune_min_steps: the downstream budget, the scaling experiment's
            rule (`ScalingPlan.epochs`, `ScalingPlan.min_steps`), the same from scratch.
        shots, draws: linear few-shot probes of the frozen pre-trained features.
        fractal_root: cache folder of the rendered fractals (null: data/fractals).
    """

    models: Tuple[str, ...] = ("ViT_tiny_patch4_16", "ResNet20")
    sizes: Tuple[int, ...] = (1_000, 10_000, 100_000)
    classes: int = 100
    pretrain_steps: int = 1_600
    seeds: Tuple[int, ...] = (1,)
    finetune_fraction: float = 0.1
    finetune_epochs: int = 30
    finetune_min_steps: int = 200
    shots: Tuple[int, ...] = (5, 10)
    draws: int = 5
    fractal_root: Optional[str] = None

    def check(self):
        if not self.models or not self.sizes or not self.seeds or not self.shots:
            raise ConfigError("the transfer experiment needs models, sizes, seeds and shots")
        if self.classes < 2 or min(self.sizes) < self.classes:
            raise ConfigError(f"every pre-training size needs at least one image of each of the "
                              f"{self.classes} classes, got sizes {list(self.sizes)}",
                              "raise --sizes or lower --classes")
        if self.pretrain_steps < 10 or self.draws < 1:
            raise ConfigError("--pretrain-steps must be at least 10 and --draws at least 1")
        self.downstream().check()

    def downstream(self) -> ScalingPlan:
        """The fine-tuning budget, as a one-share plan of the scaling experiment."""
        return ScalingPlan(self.models, (self.finetune_fraction,), self.seeds,
                           self.finetune_epochs, self.finetune_min_steps)


def per_class_for(plan: TransferPlan, size: int) -> int:
    """Images rendered per class so that the training split holds about `size`."""
    return math.ceil(size / plan.classes / (1 - 2 * PRETRAIN_HELD_OUT))


def pretrain_config(config: Config, plan: TransferPlan, model: str, size: int, seed: int,
                    output_dir: Path) -> Config:
    """The config of one pre-training run: the base config's recipe on `size` generated
    images, `plan.pretrain_steps` steps (in whole epochs), at the model's input size."""
    side = resolve_image_size(config_from_dict(config.to_dict(), overrides=[
        f"model.name={model}"]))
    steps_per_epoch = math.ceil(size / config.data.batch_size)
    epochs = max(1, round(plan.pretrain_steps / steps_per_epoch))
    return config_from_dict(config.to_dict(), config.name, "the transfer experiment", [
        f"model.name={model}", "model.pretrained=null", "data.source=fractals",
        f"data.root={plan.fractal_root or 'null'}", f"data.fractal_classes={plan.classes}",
        f"data.fractal_per_class={per_class_for(plan, size)}", f"data.fractal_size={side}",
        f"data.fractal_seed={seed}", f"data.val_fraction={PRETRAIN_HELD_OUT}",
        f"data.test_fraction={PRETRAIN_HELD_OUT}", "data.train_fraction=1.0",
        f"train.seed={seed}", f"train.epochs={epochs}",
        f"optim.warmup_steps={max(1, epochs * steps_per_epoch // 10)}",
        f"train.eval_every={max(1, epochs // 8)}", "train.resume=null",
        f"output.dir={output_dir}", f"output.run_name={pretrain_name(model, size, seed)}"])


def pretrain_name(model: str, size: int, seed: int) -> str:
    return f"pretrain_{model}_n{size}_s{seed}"


def finetune_name(model: str, size: Optional[int], seed: int) -> str:
    """`finetune_<model>_n<size>_s<seed>`; without a size, the from-scratch reference."""
    return f"finetune_{model}_n{size}_s{seed}" if size else f"scratch_{model}_s{seed}"


def downstream_config(config: Config, plan: TransferPlan, model: str, seed: int,
                      train_images: int, output_dir: Path, size: Optional[int]) -> Config:
    """Fine-tuning on the base config's data (from the pre-training run of `size`, or from
    scratch without one), with the scaling experiment's budget for its share."""
    base = point_config(config, plan.downstream(), model, plan.finetune_fraction, seed,
                        train_images, output_dir)
    weights = (output_dir / pretrain_name(model, size, seed) / "checkpoints" / "best.pdparams"
               if size else None)
    return config_from_dict(base.to_dict(), config.name, "the transfer experiment", [
        f"model.pretrained={weights or 'null'}",
        f"output.run_name={finetune_name(model, size, seed)}"])


def run_transfer(config: Config, plan: TransferPlan, output_dir,
                 progress: Progress = None) -> Dict[str, object]:
    """Pre-train every model on every size of generated data and transfer each to the base
    config's data set: fine-tuned on `plan.finetune_fraction` of it, and linear few-shot
    probes of the frozen features; each model also fine-tuned from scratch and probed at
    random initialisation (the references). Finished runs, and probes made with the plan's
    settings, are kept, so an interrupted experiment continues where it stopped. Writes
    `transfer.json` and `transfer.png` into `output_dir`.

    Returns:
        dict with `results` (the JSON's content), `json` and `figure` paths.
    """
    plan.check()
    output_dir = Path(output_dir)
    downstream = build_datasets(dataclasses.replace(config.data,
                                                    train_fraction=plan.finetune_fraction))
    train_images = len(downstream.splits["train"])
    tasks = []
    for seed in plan.seeds:
        for model in plan.models:
            tasks.append((f"{finetune_name(model, None, seed)} (from scratch)",
                          lambda m=model, s=seed: _finetune(config, plan, m, s, train_images,
                                                            output_dir, None)))
            tasks.append((f"random_{model}_s{seed} (probe, no pre-training)",
                          lambda m=model, s=seed: _probe_random(config, plan, m, s,
                                                                train_images, output_dir)))
            for size in plan.sizes:
                tasks.append((f"{pretrain_name(model, size, seed)} ({size} fractals)",
                              lambda m=model, n=size, s=seed: _train_unless_finished(
                                  pretrain_config(config, plan, m, n, s, output_dir))))
                tasks.append((f"{pretrain_name(model, size, seed)} (probe)",
                              lambda m=model, n=size, s=seed: _probe_pretrained(
                                  config, plan, m, n, s, train_images, output_dir)))
                tasks.append((f"{finetune_name(model, size, seed)} (fine-tune)",
                              lambda m=model, n=size, s=seed: _finetune(
                                  config, plan, m, s, train_images, output_dir, n)))
    for done, (stage, task) in enumerate(tasks):
        if progress:
            progress(stage, done, len(tasks))
        task()
    if progress:
        progress("done", len(tasks), len(tasks))
    results = summarize_transfer(config, plan, train_images, downstream.num_classes,
                                 output_dir)
    json_path = output_dir / "transfer.json"
    json_path.write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    figure = save_figure(plot_transfer(results), output_dir / "transfer.png")
    return {"results": results, "json": json_path, "figure": figure}


def _finetune(config, plan, model, seed, train_images, output_dir, size):
    _train_unless_finished(downstream_config(config, plan, model, seed, train_images,
                                             output_dir, size))


def probe_file(output_dir: Path, model: str, size: Optional[int], seed: int) -> Path:
    """Where the experiment keeps, and reuses, one probe: `<run>/probe/probe.json` of the
    pre-training run (or of `random_<model>_s<seed>`). `tools/probe.py` never writes there
    unless its `--output` names the folder."""
    folder = pretrain_name(model, size, seed) if size else f"random_{model}_s{seed}"
    return output_dir / folder / "probe" / "probe.json"


def _kept_probe(path: Path, config: Config, plan: TransferPlan, seed: int,
                train_images: int) -> bool:
    """Whether `path` holds this experiment's probe (its data set, the fine-tuning share's
    images, the plan's shots and draws, the run's seed), which is then kept. Anything else
    there, such as a probe run by hand with other settings into that folder, is probed again."""
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return (record.get("source") == config.data.source and record.get("seed") == seed
            and record.get("train_images") == train_images
            and record.get("draws") == plan.draws
            and list(record.get("shots", {})) == [str(k) for k in plan.shots])


def _write_probe(path: Path, result: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, json.dumps(result, indent=1) + "\n")


def _probe_pretrained(config, plan, model, size, seed, train_images, output_dir):
    from .inference import load_for_inference

    path = probe_file(output_dir, model, size, seed)
    if _kept_probe(path, config, plan, seed, train_images):
        return
    target = downstream_config(config, plan, model, seed, train_images, output_dir, None)
    loaded = load_for_inference(output_dir / pretrain_name(model, size, seed) / "checkpoints"
                                / "best.pdparams", config=target)
    _write_probe(path, few_shot_accuracy(loaded, plan.shots, plan.draws, seed))


def _probe_random(config, plan, model, seed, train_images, output_dir):
    """The probe of a randomly initialised model: what features are worth before any
    training, its input preprocessed as the run from scratch preprocesses it."""
    import paddle

    from ..data.builder import prepare_data

    path = probe_file(output_dir, model, None, seed)
    if _kept_probe(path, config, plan, seed, train_images):
        return
    target = downstream_config(config, plan, model, seed, train_images, output_dir, None)
    data = prepare_data(target, resolve_image_size(target))
    paddle.seed(seed)
    network = create_model(model, **model_kwargs_from_config(target, data.num_classes))
    _write_probe(path, probe_features(network, data.preprocessing.eval_transform(),
                                      target.data, plan.shots, plan.draws, seed))


def summarize_transfer(config: Config, plan: TransferPlan, train_images: int,
                       num_classes: int, output_dir: Path) -> Dict[str, object]:
    """Per model: the references (fine-tuned from scratch, probed at random initialisation)
    and, per pre-training size, the held-out accuracy on the fractals, the fine-tuned test
    top-1 and the k-shot probes, each over seeds (mean and sample standard deviation)."""

    def spread(scores):
        return {"per_seed": scores, **mean_and_std(scores)}

    def probes(size, model):
        found = [json.loads(probe_file(output_dir, model, size, seed).read_text())["shots"]
                 for seed in plan.seeds]
        return {str(k): spread([f[str(k)]["mean"] for f in found]) for k in plan.shots}

    def top1(name):
        return load_metrics(output_dir / name)["test"]["top1"]

    models = {}
    for model in plan.models:
        points = []
        for size in plan.sizes:
            first = output_dir / pretrain_name(model, size, plan.seeds[0])
            history = load_metrics(first)["history"]
            points.append({
                "pretrain_images": size,
                "per_class": per_class_for(plan, size),
                "pretrain_epochs": history[-1]["epoch"],
                "pretrain_steps": history[-1]["global_step"],
                "pretrain_seconds": round(sum(r["seconds"] for r in history), 1),
                "pretrain_test_top1": spread([top1(pretrain_name(model, size, s))
                                              for s in plan.seeds]),
                "finetune_top1": spread([top1(finetune_name(model, size, s))
                                         for s in plan.seeds]),
                "probe": probes(size, model)})
        models[model] = {
            "parameters": _parameters(config, model, num_classes),
            "scratch_top1": spread([top1(finetune_name(model, None, s)) for s in plan.seeds]),
            "random_probe": probes(None, model),
            "points": points}
    return {"source": config.data.source, "pretrain_source": "fractals",
            "classes": plan.classes, "pretrain_steps": plan.pretrain_steps,
            "finetune_fraction": plan.finetune_fraction, "finetune_images": train_images,
            "shots": list(plan.shots), "draws": plan.draws, "seeds": list(plan.seeds),
            "budget_rule": (
                f"pre-training: {plan.pretrain_steps} optimizer steps (whole epochs, at least "
                f"one) at every size, {plan.classes} fractal classes, "
                f"{PRETRAIN_HELD_OUT:.0%} of the images held out for val and for test; "
                f"fine-tuning: {plan.finetune_epochs} epochs of {train_images} "
                f"{config.data.source} images and at least {plan.finetune_min_steps} steps, "
                "the same from scratch; warmup 10 % of every run; optimizer, schedule and "
                "augmentation are the config's"),
            "models": models}


def format_transfer(results: Dict[str, object]) -> str:
    """The experiment's table for the terminal: per model and pre-training size, fine-tuned
    top-1 and k-shot accuracy (mean +- sample std over seeds)."""
    shots = results["shots"]
    header = (f"{'model':<22}{'pre-training':>14}{'fine-tuned':>16}"
              + "".join(f"{f'{k}-shot':>16}" for k in shots))
    lines = [f"transfer to {results['source']} ({results['finetune_images']} fine-tuning "
             f"images), mean +- sample std over seeds {results['seeds']}", header]

    def cell(value):
        return f"{value['mean']:>9.4f}+-{value['std']:.3f}"

    for name, model in results["models"].items():
        lines.append(f"{name:<22}{'none':>14}{cell(model['scratch_top1']):>16}" + "".join(
            f"{cell(model['random_probe'][str(k)]):>16}" for k in shots))
        for point in model["points"]:
            lines.append(f"{'':<22}{point['pretrain_images']:>14,}"
                         f"{cell(point['finetune_top1']):>16}" + "".join(
                             f"{cell(point['probe'][str(k)]):>16}" for k in shots))
    return "\n".join(lines)


def transfer_plan(**changes) -> TransferPlan:
    """The default transfer plan with the given fields replaced (None: kept)."""
    return dataclasses.replace(TransferPlan(), **{
        key: tuple(value) if isinstance(value, list) else value
        for key, value in changes.items() if value is not None})
