"""What the transfer experiment runs (`transfer.py`): the plan, its named presets, the order of
its points (the deciding ones first), the pre-training budget rule and when a pre-training run
counts as converged.

The budget rule lets data be data: a pre-training run takes `pretrain_epochs` passes over its
images but at least `pretrain_steps` optimizer steps, so the budget grows with the data above
the floor and every size gets enough steps to learn its task below it. Every run is cut into
`EVALUATIONS` epochs of equal length (`data.epoch_fraction`), each ending with a held-out
evaluation, so that the gain over the last fifth of the budget is measured at any size.
"""

import dataclasses
import math
from typing import Dict, List, Optional, Tuple

from ..errors import ConfigError, param
from .scaling import ScalingPlan, check_budget, check_share

EVALUATIONS = 10  # held-out evaluations of every pre-training run, at equal steps
CONVERGED_TOP1 = 0.9  # held-out fractal top-1 at which a run has learnt its task ...
PLATEAU_GAIN = 0.01  # ... or the most it may still gain over the last fifth of its budget

Point = Tuple[str, int, int]  # (model, pre-training images, seed)


@dataclasses.dataclass(frozen=True)
class TransferPlan:
    """What the transfer experiment runs.

    Attributes:
        models: registered names; the first is the ViT, the others its baselines.
        sizes: pre-training images (the training split of the generated set) per point.
        classes: fractal classes, one for every size or one per size (more classes are more
            variety; FractalDB's authors found them worth more than more instances).
        pretrain_epochs, pretrain_steps: the budget rule: passes over its images of every
            pre-training run, but at least this many optimizer steps.
        seeds: one run per seed at every point; the seed also draws the fractals.
        one_seed_from: sizes at or above this take the first seed only (null: every seed).
        larger_models, larger_sizes: a larger pair, pre-trained only at these sizes.
        finetune_fraction: share of the downstream training split that fine-tuning sees.
        finetune_epochs, finetune_min_steps: the downstream budget, the scaling experiment's
            rule (`ScalingPlan.epochs`, `ScalingPlan.min_steps`), the same from scratch.
        shots, draws: linear few-shot probes of the frozen pre-trained features.
        fractal_root: cache folder of the rendered fractals (null: data/fractals).
    """

    models: Tuple[str, ...] = ("ViT_tiny_patch4_16", "ResNet20")
    sizes: Tuple[int, ...] = (1_000, 10_000, 100_000)
    classes: Tuple[int, ...] = (100,)
    pretrain_epochs: int = 1
    pretrain_steps: int = 1_600
    seeds: Tuple[int, ...] = (1,)
    one_seed_from: Optional[int] = None
    larger_models: Tuple[str, ...] = ()
    larger_sizes: Tuple[int, ...] = ()
    finetune_fraction: float = 0.1
    finetune_epochs: int = 30
    finetune_min_steps: int = 200
    shots: Tuple[int, ...] = (5, 10)
    draws: int = 5
    fractal_root: Optional[str] = None

    def check(self):
        if not self.models or not self.sizes or not self.seeds or not self.shots:
            raise ConfigError(f"the transfer experiment needs {param('models')}, "
                              f"{param('sizes')}, {param('seeds')} and {param('shots')}")
        if len(self.classes) not in (1, len(self.sizes)) or min(self.classes) < 2:
            raise ConfigError(f"{param('classes')} must be one count (at least 2) or one per "
                              f"size, got {list(self.classes)} for sizes {list(self.sizes)}",
                              f"give {param('classes')} to match {param('sizes')}")
        small = [size for size in self.sizes if size < self.classes_at(size)]
        if small:
            raise ConfigError(f"every pre-training size needs at least one image of each "
                              f"class, got {small[0]} images for {self.classes_at(small[0])} "
                              "classes", f"raise {param('sizes')} or lower {param('classes')}")
        if set(self.larger_sizes) - set(self.sizes) or bool(self.larger_models) != bool(
                self.larger_sizes):
            raise ConfigError(f"{param('larger_sizes')} must be some of {param('sizes')}, "
                              f"given with {param('larger_models')}, got "
                              f"{list(self.larger_sizes)} for sizes {list(self.sizes)}",
                              f"give {param('larger_sizes')} to match {param('sizes')}")
        if len(set(self.all_models)) < len(self.all_models):
            raise ConfigError(f"a model is named twice in {param('models')} and "
                              f"{param('larger_models')}: {list(self.all_models)}")
        if self.pretrain_steps < 10 or self.pretrain_epochs < 1 or self.draws < 1:
            raise ConfigError(f"{param('pretrain_steps')} must be at least 10, "
                              f"{param('pretrain_epochs')} and {param('draws')} at least 1")
        check_share("finetune_fraction", (self.finetune_fraction,))
        check_budget(self.finetune_epochs, self.finetune_min_steps, "finetune_epochs",
                     "finetune_min_steps")

    def classes_at(self, size: int) -> int:
        return self.classes[0] if len(self.classes) == 1 else self.classes[
            self.sizes.index(size)]

    def seeds_at(self, size: int) -> Tuple[int, ...]:
        single = self.one_seed_from is not None and size >= self.one_seed_from
        return self.seeds[:1] if single else self.seeds

    def models_at(self, size: int) -> Tuple[str, ...]:
        return self.models + (self.larger_models if size in self.larger_sizes else ())

    @property
    def all_models(self) -> Tuple[str, ...]:
        return self.models + self.larger_models

    def points(self) -> List[Point]:
        """Every pre-training run, the deciding ones first: per seed (the first first), the
        two largest sizes, largest first, for each pair in turn (the plan's models, then the
        larger pair), then the other sizes, largest first, every model there."""
        deciding = sorted(self.sizes, reverse=True)[:2]
        order = [(group, size) for group in (self.models, self.larger_models)
                 for size in deciding]
        order += [(self.all_models, size) for size in sorted(self.sizes, reverse=True)[2:]]
        return [(model, size, seed) for seed in self.seeds for group, size in order
                if seed in self.seeds_at(size) for model in group
                if model in self.models_at(size)]

    def references(self) -> List[Tuple[str, int]]:
        """(model, seed) of every reference: without pre-training, each seed a point uses."""
        return [(model, seed) for seed in self.seeds for model in self.all_models
                if any(m == model and s == seed for m, _, s in self.points())]

    def downstream(self) -> ScalingPlan:
        """The fine-tuning budget, as a one-share plan of the scaling experiment."""
        return ScalingPlan(self.all_models, (self.finetune_fraction,), self.seeds,
                           self.finetune_epochs, self.finetune_min_steps)


# The named plans (`tools/scaling.py --pretrain fractals --plan NAME`): `default` fits about 20
# minutes on 2 cores; `large` is the crossover run of docs/scaling.md, hours long, run in
# stretches (`--hours`): 10^6 images (FractalDB-1k's size: 1,000 classes of 1,000) with one seed,
# two seeds below, and the larger pair at the two largest sizes.
PLANS: Dict[str, TransferPlan] = {
    "default": TransferPlan(),
    "large": TransferPlan(sizes=(1_000, 10_000, 100_000, 300_000, 1_000_000),
                          classes=(100, 100, 100, 300, 1_000), pretrain_steps=4_800,
                          seeds=(1, 2), one_seed_from=1_000_000,
                          larger_models=("ViT_mini_patch4_16", "ResNet20x2"),
                          larger_sizes=(300_000, 1_000_000)),
}


def transfer_plan(name: str = "default", **changes) -> TransferPlan:
    """The named plan with the given fields replaced (None: kept)."""
    if name not in PLANS:
        raise ConfigError(f"unknown plan '{name}'", f"use one of: {', '.join(PLANS)}")
    return dataclasses.replace(PLANS[name], **{
        key: tuple(value) if isinstance(value, list) else value
        for key, value in changes.items() if value is not None})


def pretrain_budget(plan: TransferPlan, size: int, batch_size: int) -> Tuple[int, float]:
    """(optimizer steps, `data.epoch_fraction`) of a pre-training run on `size` images: the
    budget rule's steps, cut into `EVALUATIONS` epochs."""
    steps = max(plan.pretrain_steps, math.ceil(plan.pretrain_epochs * size / batch_size))
    return steps, steps * batch_size / (EVALUATIONS * size)


def last_fifth_gain(history: List[dict]) -> Optional[float]:
    """Held-out top-1 at the end of a run minus at the evaluation nearest four fifths of it
    (None without both)."""
    evaluated = [(r["global_step"], r["val_top1"]) for r in history if "val_top1" in r]
    if len(evaluated) < 2:
        return None
    end = evaluated[-1][0]
    step, top1 = min(evaluated[:-1], key=lambda e: abs(e[0] - 0.8 * end))
    return evaluated[-1][1] - top1 if abs(step - 0.8 * end) <= 0.1 * end else None


def converged(test_top1: float, gain: Optional[float]) -> bool:
    """The convergence criterion: held-out top-1 of at least CONVERGED_TOP1, or a gain under
    PLATEAU_GAIN over the last fifth of the budget."""
    return test_top1 >= CONVERGED_TOP1 or (gain is not None and gain < PLATEAU_GAIN)
