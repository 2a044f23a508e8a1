"""What each of the transfer experiment's runs and probes is (`transfer_plan.py` plans them,
`transfer.py` runs them in order and summarises them): the names of the run folders, the config
of every pre-training and fine-tuning run, and the linear few-shot probes, which are kept where
they were made with the plan's settings.
"""

import json
import math
from pathlib import Path
from typing import Optional

from ..config import Config, config_from_dict
from ..files import write_text_atomic
from ..models import create_model
from .builders import model_kwargs_from_config, resolve_image_size
from .probe import few_shot_accuracy, probe_features
from .run_folder import RunFolder
from .scaling import point_config
from .transfer_plan import EVALUATIONS, TransferPlan, pretrain_budget

PRETRAIN_SOURCE = "fractals"  # the data source pre-training draws from
PRETRAIN_HELD_OUT = 0.05  # val and test shares of the generated images (of every class)


# --- the runs and their names ------------------------------------------------------------------
def per_class_for(plan: TransferPlan, size: int) -> int:
    """Images rendered per class so that the training split holds about `size`."""
    return math.ceil(size / plan.classes_at(size) / (1 - 2 * PRETRAIN_HELD_OUT))


def pretrain_name(model: str, size: int, seed: int) -> str:
    return f"pretrain_{model}_n{size}_s{seed}"


def finetune_name(model: str, size: Optional[int], seed: int) -> str:
    """`finetune_<model>_n<size>_s<seed>`; without a size, the from-scratch reference."""
    return f"finetune_{model}_n{size}_s{seed}" if size else f"scratch_{model}_s{seed}"


def random_name(model: str, seed: int) -> str:
    """The folder of the probe at random initialisation (no run trains there)."""
    return f"random_{model}_s{seed}"


def pretrain_config(config: Config, plan: TransferPlan, model: str, size: int, seed: int,
                    output_dir: Path) -> Config:
    """The config of one pre-training run: the base config's recipe on `size` generated
    images at the model's input size, the budget rule's steps (`pretrain_budget`) in
    `EVALUATIONS` epochs, each evaluated on the held-out fractals."""
    side = resolve_image_size(config_from_dict(config.to_dict(), overrides=[
        f"model.name={model}"]))
    steps, epoch_fraction = pretrain_budget(plan, size, config.data.batch_size)
    return config_from_dict(config.to_dict(), config.name, "the transfer experiment", [
        f"model.name={model}", "model.pretrained=null", f"data.source={PRETRAIN_SOURCE}",
        f"data.root={plan.fractal_root or 'null'}",
        f"data.fractal_classes={plan.classes_at(size)}",
        f"data.fractal_per_class={per_class_for(plan, size)}", f"data.fractal_size={side}",
        f"data.fractal_seed={seed}", f"data.val_fraction={PRETRAIN_HELD_OUT}",
        f"data.test_fraction={PRETRAIN_HELD_OUT}", "data.train_fraction=1.0",
        f"data.epoch_fraction={epoch_fraction}", f"train.seed={seed}",
        f"train.epochs={EVALUATIONS}", f"optim.warmup_steps={max(1, steps // 10)}",
        "train.eval_every=1", "train.resume=null", f"output.dir={output_dir}",
        f"output.run_name={pretrain_name(model, size, seed)}"])


def downstream_config(config: Config, plan: TransferPlan, model: str, seed: int,
                      train_images: int, output_dir: Path, size: Optional[int]) -> Config:
    """Fine-tuning on the base config's data (from the pre-training run of `size`, or from
    scratch without one), with the scaling experiment's budget for its share."""
    base = point_config(config, plan.downstream(), model, plan.finetune_fraction, seed,
                        train_images, output_dir)
    weights = (RunFolder(output_dir / pretrain_name(model, size, seed)).best_checkpoint
               if size else None)
    return config_from_dict(base.to_dict(), config.name, "the transfer experiment", [
        f"model.pretrained={weights or 'null'}",
        f"output.run_name={finetune_name(model, size, seed)}"])


# --- the probes --------------------------------------------------------------------------------
def probe_file(output_dir: Path, model: str, size: Optional[int], seed: int) -> Path:
    """Where the experiment keeps, and reuses, one probe: `<run>/probe/probe.json` of the
    pre-training run (or of `random_<model>_s<seed>`). A probe run by hand (`tools/probe.py`)
    writes beside the run, never there, unless told to write into that folder."""
    folder = pretrain_name(model, size, seed) if size else random_name(model, seed)
    return output_dir / folder / "probe" / "probe.json"


def kept_probe(path: Path, config: Config, plan: TransferPlan, seed: int,
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


def probe_pretrained(config, plan, model, size, seed, train_images, output_dir):
    """The probe of the frozen features of a pre-training run's best checkpoint, on the
    images fine-tuning sees, unless the kept one was made with these settings."""
    from .inference import load_for_inference

    path = probe_file(output_dir, model, size, seed)
    if kept_probe(path, config, plan, seed, train_images):
        return
    target = downstream_config(config, plan, model, seed, train_images, output_dir, None)
    run = RunFolder(output_dir / pretrain_name(model, size, seed))
    loaded = load_for_inference(run.best_checkpoint, config=target)
    _write_probe(path, few_shot_accuracy(loaded, plan.shots, plan.draws, seed))


def probe_random(config, plan, model, seed, train_images, output_dir):
    """The probe of a randomly initialised model: what features are worth before any
    training, its input preprocessed as the run from scratch preprocesses it."""
    import paddle

    from ..data.builder import prepare_data

    path = probe_file(output_dir, model, None, seed)
    if kept_probe(path, config, plan, seed, train_images):
        return
    target = downstream_config(config, plan, model, seed, train_images, output_dir, None)
    data = prepare_data(target, resolve_image_size(target))
    paddle.seed(seed)
    network = create_model(model, **model_kwargs_from_config(target, data.num_classes))
    _write_probe(path, probe_features(network, data.preprocessing.eval_transform(),
                                      target.data, plan.shots, plan.draws, seed))
