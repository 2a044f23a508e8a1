"""The transfer experiment (the question of the paper's Figures 3 and 4, at the size of a CPU):
a ViT and a CNN of similar size pre-trained on growing sets of generated fractals, then
transferred to the base config's data set: fine-tuned on a small share of it, and probed
linearly with frozen features. Each model is also fine-tuned from scratch and probed at random
initialisation (the references).

The pre-training budget grows with the data above a floor of steps (`transfer_plan.py`, which
also says when a run has converged); fine-tuning follows the from-scratch experiment's rule
(`scaling.py`). Every run is a normal run folder, and finished runs and kept probes are not
made again, so an interrupted experiment continues where it stopped. The plan is in
`transfer_plan.py`, the runs and the probes in `transfer_runs.py`; this module runs them in
order and summarises them.
"""

import dataclasses
import functools
import json
import logging
from pathlib import Path
from typing import Callable, Dict, List, Optional

from ..config import Config
from ..data.sources import build_datasets
from ..progress import Progress
from ..viz.training_figures import plot_transfer
from .probe import mean_and_std
from .run_folder import RunFolder
from .run_log import load_metrics
from .scaling import (Step, finished_top1, parameters_of, refuse_label_sets, run_steps,
                      save_results, train_unless_finished)
from .trainer import TrainingInterrupted
from .transfer_plan import (CONVERGED_TOP1, EVALUATIONS, PLATEAU_GAIN, TransferPlan, converged,
                            last_fifth_gain)
from .transfer_runs import (PRETRAIN_HELD_OUT, PRETRAIN_SOURCE, downstream_config, finetune_name,
                            kept_probe, per_class_for, pretrain_config, pretrain_name,
                            probe_file, probe_pretrained, probe_random, random_name)

log = logging.getLogger(__name__)

CONVERGENCE_RULE = (f"a pre-training run has converged when its held-out fractal top-1 is at "
                    f"least {CONVERGED_TOP1} or it gained under {PLATEAU_GAIN * 100:g} point "
                    "over the last fifth of its budget; other points are marked, not read as "
                    "results")

__all__ = ["format_transfer", "run_transfer", "summarize_transfer"]


# --- the experiment ----------------------------------------------------------------------------
def run_transfer(config: Config, plan: TransferPlan, output_dir, progress: Progress = None,
                 stop: Optional[Callable[[], bool]] = None) -> Dict[str, object]:
    """Pre-train every model on every size of generated data and transfer each to the base
    config's data set: fine-tuned on `plan.finetune_fraction` of it, and linear few-shot
    probes of the frozen features; each model also fine-tuned from scratch and probed at
    random initialisation (the references). The deciding points run first. Finished runs,
    and probes made with the plan's settings, are kept and a stopped run continues, so an
    interrupted experiment continues where it stopped. Writes `transfer.json` and
    `transfer.png` into `output_dir`, with what is finished.

    Args:
        stop: polled during training; returning True (a stretch's time is up) saves the run
            in progress and ends the experiment early, its summary written.

    Returns:
        dict with `results` (the JSON's content), `json` and `figure` paths, and `stopped`
        (the step the experiment stopped in, None when it finished).
    """
    plan.check()
    refuse_label_sets(config)
    output_dir = Path(output_dir)
    downstream = build_datasets(dataclasses.replace(config.data,
                                                    train_fraction=plan.finetune_fraction))
    train_images = len(downstream.splits["train"])
    stopped = None
    try:
        run_steps(_steps(config, plan, train_images, output_dir, stop), progress)
    except TrainingInterrupted as interrupted:
        stopped = interrupted.message
        log.info("the experiment stopped (%s); the same command continues it", stopped)
    results = summarize_transfer(config, plan, train_images, downstream.num_classes,
                                 output_dir)
    return {**save_results(results, output_dir, "transfer", plot_transfer), "stopped": stopped}


def _steps(config: Config, plan: TransferPlan, train_images: int, output_dir: Path,
           stop) -> List[Step]:
    """The references of each model and seed (minutes, and every point is read against
    them), then each point's steps in the plan's order (the deciding ones first)."""
    steps = []
    for model, seed in plan.references():
        steps += _reference_steps(config, plan, model, seed, train_images, output_dir, stop)
    for model, size, seed in plan.points():
        steps += _size_steps(config, plan, model, size, seed, train_images, output_dir, stop)
    return [(stage, functools.partial(_unless_stopped, stop, stage, step))
            for stage, step in steps]


def _unless_stopped(stop, stage: str, step):
    """Take `step`, unless a stop was requested before it (a stretch's time is up)."""
    if stop is not None and stop():
        raise TrainingInterrupted(f"stopped before {stage}")
    step()


def _reference_steps(config, plan, model, seed, train_images, output_dir, stop) -> List[Step]:
    """`model` without pre-training: fine-tuned from scratch, and probed at random
    initialisation."""
    return [(f"{finetune_name(model, None, seed)} (from scratch)",
             functools.partial(_finetune, config, plan, model, seed, train_images, output_dir,
                               None, stop)),
            (f"{random_name(model, seed)} (probe, no pre-training)",
             functools.partial(probe_random, config, plan, model, seed, train_images,
                               output_dir))]


def _size_steps(config, plan, model, size, seed, train_images, output_dir,
                stop) -> List[Step]:
    """`model` pre-trained on `size` fractals, the probe of its features, and the fine-tuning
    from it."""
    name = pretrain_name(model, size, seed)
    pretraining = pretrain_config(config, plan, model, size, seed, output_dir)
    return [(f"{name} ({size} fractals, {plan.classes_at(size)} classes)",
             functools.partial(train_unless_finished, pretraining, stop)),
            (f"{name} (probe)",
             functools.partial(probe_pretrained, config, plan, model, size, seed, train_images,
                               output_dir)),
            (f"{finetune_name(model, size, seed)} (fine-tune)",
             functools.partial(_finetune, config, plan, model, seed, train_images, output_dir,
                               size, stop))]


def _finetune(config, plan, model, seed, train_images, output_dir, size, stop):
    train_unless_finished(downstream_config(config, plan, model, seed, train_images,
                                            output_dir, size), stop)


# --- the results -------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class _Done:
    """What of an experiment's work is done: finished runs, and probes made with the plan's
    settings (the ones the experiment keeps)."""

    config: Config
    plan: TransferPlan
    train_images: int
    output_dir: Path

    def run(self, name: str) -> bool:
        return RunFolder(self.output_dir / name).has_finished()

    def probe(self, model: str, size: Optional[int], seed: int) -> bool:
        return kept_probe(probe_file(self.output_dir, model, size, seed), self.config,
                          self.plan, seed, self.train_images)

    def point(self, model: str, size: int, seed: int) -> bool:
        """Pre-training, its probe and the fine-tuning from it."""
        return self.run(finetune_name(model, size, seed)) and self.probe(model, size, seed)

    def reference(self, model: str, seed: int) -> bool:
        return self.run(finetune_name(model, None, seed)) and self.probe(model, None, seed)


def summarize_transfer(config: Config, plan: TransferPlan, train_images: int,
                       num_classes: int, output_dir: Path) -> Dict[str, object]:
    """Per model: the references (fine-tuned from scratch, probed at random initialisation)
    and, per pre-training size, the held-out accuracy on the fractals and whether the run
    converged, the fine-tuned test top-1 and the k-shot probes, each over the seeds that
    finished (mean and sample standard deviation). What has not finished is listed under
    `missing`."""
    done = _Done(config, plan, train_images, output_dir)
    missing = [f"{pretrain_name(*point)} (and its transfer)" for point in plan.points()
               if not done.point(*point)]
    missing += [f"{finetune_name(model, None, seed)} (and {random_name(model, seed)})"
                for model, seed in plan.references() if not done.reference(model, seed)]
    models = {model: _model_summary(done, model, num_classes) for model in plan.all_models}
    return {"source": config.data.source, "pretrain_source": PRETRAIN_SOURCE,
            "sizes": list(plan.sizes), "classes": [plan.classes_at(n) for n in plan.sizes],
            "pretrain_epochs": plan.pretrain_epochs, "pretrain_steps": plan.pretrain_steps,
            "finetune_fraction": plan.finetune_fraction, "finetune_images": train_images,
            "shots": list(plan.shots), "draws": plan.draws, "seeds": list(plan.seeds),
            "budget_rule": _budget_rule(config, plan, train_images),
            "convergence_rule": CONVERGENCE_RULE, "models": models, "missing": missing}


def _model_summary(done: _Done, model: str, num_classes: int) -> Dict[str, object]:
    """One model's parameters, its two references and its points, over the seeds that
    finished each."""
    plan, output_dir = done.plan, done.output_dir
    seeds = [seed for m, seed in plan.references() if m == model]
    scratch = [s for s in seeds if done.run(finetune_name(model, None, s))]
    probed = [s for s in seeds if done.probe(model, None, s)]
    points = []
    for size in plan.sizes:
        finished = [s for s in plan.seeds_at(size) if done.point(model, size, s)]
        if model in plan.models_at(size) and finished:
            points.append(_pretraining_point(plan, output_dir, model, size, finished))
    return {"parameters": parameters_of(done.config, model, num_classes),
            "scratch_top1": _spread([finished_top1(output_dir, finetune_name(model, None, s))
                                     for s in scratch]),
            "random_probe": _probes(plan, output_dir, model, None, probed),
            "points": points}


def _spread(scores: List[float]) -> Dict[str, object]:
    """Every seed's score (`per_seed`), their mean and sample standard deviation."""
    return {"per_seed": scores, **mean_and_std(scores)} if scores else {"per_seed": []}


def _probes(plan: TransferPlan, output_dir: Path, model: str, size: Optional[int],
            seeds: List[int]) -> Dict[str, dict]:
    """Per shot count k, the spread over `seeds` of the k-shot probe's mean accuracy."""
    found = [json.loads(probe_file(output_dir, model, size, seed).read_text())["shots"]
             for seed in seeds]
    return {str(k): _spread([f[str(k)]["mean"] for f in found]) for k in plan.shots}


def _pretraining_point(plan: TransferPlan, output_dir: Path, model: str, size: int,
                       seeds: List[int]) -> Dict[str, object]:
    """One pre-training size of `model` over the `seeds` that finished it: its runs' length
    (the first seed's), held-out top-1 on the fractals, its gain over the last fifth and
    whether each seed converged, the fine-tuned top-1 and the probes."""
    runs = [load_metrics(output_dir / pretrain_name(model, size, s)) for s in seeds]
    history = runs[0]["history"]
    held_out = [run["test"]["top1"] for run in runs]
    gains = [last_fifth_gain(run["history"]) for run in runs]
    return {
        "pretrain_images": size, "classes": plan.classes_at(size),
        "per_class": per_class_for(plan, size), "seeds": seeds,
        "pretrain_steps": history[-1]["global_step"],
        "pretrain_seconds": round(sum(r["seconds"] for r in history), 1),
        "pretrain_test_top1": _spread(held_out), "last_fifth_gain": gains,
        "converged": all(converged(top1, gain) for top1, gain in zip(held_out, gains)),
        "finetune_top1": _spread([finished_top1(output_dir, finetune_name(model, size, s))
                                  for s in seeds]),
        "probe": _probes(plan, output_dir, model, size, seeds)}


def _budget_rule(config: Config, plan: TransferPlan, train_images: int) -> str:
    return (f"pre-training: {plan.pretrain_epochs} pass(es) over its images and at least "
            f"{plan.pretrain_steps} optimizer steps of {config.data.batch_size} images, in "
            f"{EVALUATIONS} epochs of equal length, each evaluated on the held-out fractals; "
            f"{PRETRAIN_HELD_OUT:.0%} of the images held out for val and for test; "
            f"fine-tuning: {plan.finetune_epochs} epochs of {train_images} "
            f"{config.data.source} images and at least {plan.finetune_min_steps} steps, "
            "the same from scratch; warmup 10 % of every run; optimizer, schedule and "
            "augmentation are the config's")


def format_transfer(results: Dict[str, object]) -> str:
    """The experiment's table for the terminal: per model and pre-training size, held-out top-1
    on the fractals (`*`: not converged), fine-tuned top-1 and k-shot accuracy (mean +- sample
    std over the seeds that finished), then what is missing."""
    shots = results["shots"]
    header = (f"{'model':<22}{'pre-training':>14}{'seeds':>6}{'held-out':>16}"
              f"{'fine-tuned':>16}" + "".join(f"{f'{k}-shot':>16}" for k in shots))
    lines = [f"transfer to {results['source']} ({results['finetune_images']} fine-tuning "
             f"images), mean +- sample std over seeds; *: pre-training not converged", header]

    def cell(value):
        return f"{value['mean']:>9.4f}+-{value['std']:.3f}" if value["per_seed"] else "-"

    for name, model in results["models"].items():
        lines.append(f"{name:<22}{'none':>14}{len(model['scratch_top1']['per_seed']):>6}"
                     f"{'-':>16}{cell(model['scratch_top1']):>16}" + "".join(
                         f"{cell(model['random_probe'][str(k)]):>16}" for k in shots))
        for point in model["points"]:
            held_out = cell(point["pretrain_test_top1"]) + ("" if point["converged"] else "*")
            lines.append(f"{'':<22}{point['pretrain_images']:>14,}{len(point['seeds']):>6}"
                         f"{held_out:>16}{cell(point['finetune_top1']):>16}" + "".join(
                             f"{cell(point['probe'][str(k)]):>16}" for k in shots))
    if results["missing"]:
        lines.append(f"missing ({len(results['missing'])}): " + ", ".join(results["missing"]))
    return "\n".join(lines)
