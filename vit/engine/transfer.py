"""The transfer experiment (the question of the paper's Figures 3 and 4, at the size of a CPU):
a ViT and a CNN of similar size pre-trained on growing sets of generated fractals, then
transferred to the base config's data set: fine-tuned on a small share of it, and probed
linearly with frozen features. Each model is also fine-tuned from scratch and probed at random
initialisation (the references).

The pre-training budget is the same number of optimizer steps at every size (a larger set buys
variety, not compute); fine-tuning follows the from-scratch experiment's rule (`scaling.py`).
Every run is a normal run folder, and finished runs and kept probes are not made again, so an
interrupted experiment continues where it stopped. The plan, the runs and the probes are in
`transfer_runs.py`; this module runs them in order and summarises them.
"""

import dataclasses
import functools
import json
from pathlib import Path
from typing import Dict, List, Optional

from ..config import Config
from ..data.sources import build_datasets
from ..progress import Progress
from ..viz.training_figures import plot_transfer
from .probe import mean_and_std
from .run_log import load_metrics
from .scaling import (Step, finished_top1, parameters_of, refuse_label_sets, run_steps,
                      save_results, train_unless_finished)
from .transfer_runs import (PRETRAIN_HELD_OUT, PRETRAIN_SOURCE, TransferPlan, downstream_config,
                            finetune_name, per_class_for, pretrain_config, pretrain_name,
                            probe_file, probe_pretrained, probe_random, random_name)

__all__ = ["format_transfer", "run_transfer", "summarize_transfer"]


# --- the experiment ----------------------------------------------------------------------------
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
    refuse_label_sets(config)
    output_dir = Path(output_dir)
    downstream = build_datasets(dataclasses.replace(config.data,
                                                    train_fraction=plan.finetune_fraction))
    train_images = len(downstream.splits["train"])
    run_steps(_steps(config, plan, train_images, output_dir), progress)
    results = summarize_transfer(config, plan, train_images, downstream.num_classes,
                                 output_dir)
    return save_results(results, output_dir, "transfer", plot_transfer)


def _steps(config: Config, plan: TransferPlan, train_images: int,
           output_dir: Path) -> List[Step]:
    """Per seed and model: the two references, then each pre-training size's steps."""
    steps = []
    for seed in plan.seeds:
        for model in plan.models:
            steps += _reference_steps(config, plan, model, seed, train_images, output_dir)
            for size in plan.sizes:
                steps += _size_steps(config, plan, model, size, seed, train_images, output_dir)
    return steps


def _reference_steps(config, plan, model, seed, train_images, output_dir) -> List[Step]:
    """`model` without pre-training: fine-tuned from scratch, and probed at random
    initialisation."""
    return [(f"{finetune_name(model, None, seed)} (from scratch)",
             functools.partial(_finetune, config, plan, model, seed, train_images, output_dir,
                               None)),
            (f"{random_name(model, seed)} (probe, no pre-training)",
             functools.partial(probe_random, config, plan, model, seed, train_images,
                               output_dir))]


def _size_steps(config, plan, model, size, seed, train_images, output_dir) -> List[Step]:
    """`model` pre-trained on `size` fractals, the probe of its features, and the fine-tuning
    from it."""
    name = pretrain_name(model, size, seed)
    pretraining = pretrain_config(config, plan, model, size, seed, output_dir)
    return [(f"{name} ({size} fractals)", functools.partial(train_unless_finished, pretraining)),
            (f"{name} (probe)",
             functools.partial(probe_pretrained, config, plan, model, size, seed, train_images,
                               output_dir)),
            (f"{finetune_name(model, size, seed)} (fine-tune)",
             functools.partial(_finetune, config, plan, model, seed, train_images, output_dir,
                               size))]


def _finetune(config, plan, model, seed, train_images, output_dir, size):
    train_unless_finished(downstream_config(config, plan, model, seed, train_images,
                                            output_dir, size))


# --- the results -------------------------------------------------------------------------------
def summarize_transfer(config: Config, plan: TransferPlan, train_images: int,
                       num_classes: int, output_dir: Path) -> Dict[str, object]:
    """Per model: the references (fine-tuned from scratch, probed at random initialisation)
    and, per pre-training size, the held-out accuracy on the fractals, the fine-tuned test
    top-1 and the k-shot probes, each over seeds (mean and sample standard deviation)."""
    models = {model: _model_summary(config, plan, output_dir, model, num_classes)
              for model in plan.models}
    return {"source": config.data.source, "pretrain_source": PRETRAIN_SOURCE,
            "classes": plan.classes, "pretrain_steps": plan.pretrain_steps,
            "finetune_fraction": plan.finetune_fraction, "finetune_images": train_images,
            "shots": list(plan.shots), "draws": plan.draws, "seeds": list(plan.seeds),
            "budget_rule": _budget_rule(config, plan, train_images), "models": models}


def _model_summary(config: Config, plan: TransferPlan, output_dir: Path, model: str,
                   num_classes: int) -> Dict[str, object]:
    """One model's parameters, its two references and its points (one per pre-training
    size)."""
    return {"parameters": parameters_of(config, model, num_classes),
            "scratch_top1": _spread([finished_top1(output_dir, finetune_name(model, None, s))
                                     for s in plan.seeds]),
            "random_probe": _probes(plan, output_dir, model, None),
            "points": [_pretraining_point(plan, output_dir, model, size) for size in plan.sizes]}


def _spread(scores: List[float]) -> Dict[str, object]:
    """Every seed's score (`per_seed`), their mean and sample standard deviation."""
    return {"per_seed": scores, **mean_and_std(scores)}


def _probes(plan: TransferPlan, output_dir: Path, model: str,
            size: Optional[int]) -> Dict[str, dict]:
    """Per shot count k, the spread over seeds of the k-shot probe's mean accuracy."""
    found = [json.loads(probe_file(output_dir, model, size, seed).read_text())["shots"]
             for seed in plan.seeds]
    return {str(k): _spread([f[str(k)]["mean"] for f in found]) for k in plan.shots}


def _pretraining_point(plan: TransferPlan, output_dir: Path, model: str,
                       size: int) -> Dict[str, object]:
    """One pre-training size of `model`: its run's length (the first seed's), and over seeds
    the held-out top-1 on the fractals, the fine-tuned top-1 and the probes."""
    history = load_metrics(output_dir / pretrain_name(model, size, plan.seeds[0]))["history"]
    return {
        "pretrain_images": size,
        "per_class": per_class_for(plan, size),
        "pretrain_epochs": history[-1]["epoch"],
        "pretrain_steps": history[-1]["global_step"],
        "pretrain_seconds": round(sum(r["seconds"] for r in history), 1),
        "pretrain_test_top1": _spread([finished_top1(output_dir, pretrain_name(model, size, s))
                                       for s in plan.seeds]),
        "finetune_top1": _spread([finished_top1(output_dir, finetune_name(model, size, s))
                                  for s in plan.seeds]),
        "probe": _probes(plan, output_dir, model, size)}


def _budget_rule(config: Config, plan: TransferPlan, train_images: int) -> str:
    return (f"pre-training: {plan.pretrain_steps} optimizer steps (whole epochs, at least "
            f"one) at every size, {plan.classes} fractal classes, "
            f"{PRETRAIN_HELD_OUT:.0%} of the images held out for val and for test; "
            f"fine-tuning: {plan.finetune_epochs} epochs of {train_images} "
            f"{config.data.source} images and at least {plan.finetune_min_steps} steps, "
            "the same from scratch; warmup 10 % of every run; optimizer, schedule and "
            "augmentation are the config's")


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
