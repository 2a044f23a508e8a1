"""What a run trains with: the model (published weights, a frozen backbone, or the state of a
checkpoint to resume), loaders, optimizer, schedule, EMA, checkpointer and log, built once by
`setup_training`; `Training` also holds where the loop stands. The trainer (trainer.py) runs
the loop over it."""

import logging
import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import paddle

from ..config import Config, to_plain
from ..data.builder import PreparedData
from ..data.loaders import build_loader
from ..models import create_model, model_args
from ..models.pretrained import build_pretrained
from ..models.weights import load_state_dict_strict
from ..progress import Progress
from .builders import model_kwargs_from_config
from .checkpoint import Checkpointer, checkpoint_record, load_checkpoint
from .ema import ModelEma
from .finetune import HeadTraining, feature_set, freeze_backbone, needs_images_each_epoch
from .loop import LoopState
from .losses import TrainingLoss, class_weights_for
from .model_record import ModelRecord, refuse_differences
from .optim import build_optimizer, build_scheduler
from .run_folder import RunFolder
from .run_log import RunLog, best_figure
from .runtime import Runtime

log = logging.getLogger(__name__)


@dataclass
class Training:
    """What a run trains with, built once by `setup_training`, and where the loop stands
    (`state`)."""

    model: paddle.nn.Layer
    forward_model: paddle.nn.Layer  # what the loaders' batches go through: the model, or its
    # head on a frozen backbone (finetune.HeadTraining)
    optimizer: object
    scheduler: object
    ema: Optional[ModelEma]
    checkpointer: Checkpointer
    run_log: RunLog
    train_loader: object
    val_loader: object
    steps_per_epoch: int
    num_classes: int
    loss: TrainingLoss
    state: LoopState

    def position(self) -> dict:
        """What a checkpoint's JSON records of where training stands."""
        by = self.run_log.metrics["best_by"]
        return {"epoch": self.state.epoch, "batch_in_epoch": self.state.batch_in_epoch,
                "global_step": self.state.global_step, "best_by": by,
                "best_value": self.run_log.metrics.get(f"best_{by}"),
                "best_epoch": self.run_log.best_epoch}

    def training_state(self) -> dict:
        """What a `.pdopt` holds: everything besides the weights needed to resume exactly."""
        return {"optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "ema": self.ema.state_dict() if self.ema else None,
                "loop": self.state.as_dict(), "metrics": self.run_log.metrics}


def setup_training(config: Config, runtime: Runtime, data: PreparedData, run_dir: Path,
                   resume_from: Optional[Path], progress: Progress) -> Training:
    """Model (pretrained or resumed), loaders, optimizer, schedule, EMA, checkpointer and log."""
    model, args = build_configured_model(config, data.num_classes, resume_from)
    checkpoint_blocks(model, config)
    forward_model, train_set, val_set = model, data.train, data.val
    if config.train.freeze == "backbone":
        forward_model, train_set, val_set = frozen_backbone(config, model, data, progress)
    train_loader = build_loader(train_set, config.data.batch_size, True, config.train.seed,
                                runtime.rank, runtime.world_size, config.data.num_workers,
                                balanced=config.data.sampler == "balanced",
                                epoch_fraction=config.data.epoch_fraction)
    steps_per_epoch = math.ceil(len(train_loader.batch_sampler) / config.train.accum_steps)
    scheduler = build_scheduler(config.optim, config.train.epochs, steps_per_epoch)
    optimizer = build_optimizer(config.optim, model, scheduler)
    ema = ModelEma(model, config.train.ema_decay) if config.train.ema_decay else None
    checkpointer = Checkpointer(RunFolder(run_dir).checkpoints,
                                ModelRecord.of(config.model.name, args, data.preprocessing),
                                config.to_dict(), config.train.keep_checkpoints,
                                enabled=runtime.is_main)
    state, history = (resume_training(resume_from, model, optimizer, scheduler, ema, checkpointer)
                      if resume_from is not None else (LoopState(), None))
    run_log = RunLog(run_dir if runtime.is_main else None, metrics=history,
                     best_by=best_figure(config.train.select_best_by, config.data.task),
                     task=config.data.task)
    return Training(model, forward_model, optimizer, scheduler, ema, checkpointer, run_log,
                    train_loader, eval_loader(val_set, config, runtime), steps_per_epoch,
                    data.num_classes, training_loss(config, data), state)


def checkpoint_blocks(model, config: Config):
    """Turn `train.recompute` on: each Transformer block recomputes its activations in the
    backward pass (VisionTransformer.set_grad_checkpointing; `trainer.checked_config` has
    refused it for a model without blocks)."""
    if config.train.recompute:
        model.set_grad_checkpointing(True)
        log.info("recompute: each block's activations are recomputed in the backward pass")


def training_loss(config: Config, data: PreparedData) -> TrainingLoss:
    """The task's loss with the class weights `train.class_weights` asks for."""
    multilabel = data.preprocessing.multilabel
    weights = class_weights_for(config.train.class_weights, data.train.labels, multilabel,
                                data.class_names)
    if weights is not None:
        log.info("%s: %s", "BCE positive weights" if multilabel else "class weights",
                 ", ".join(f"{name} {w:.3g}" for name, w in zip(data.class_names, weights)))
    return TrainingLoss(multilabel, weights)


def frozen_backbone(config: Config, model, data: PreparedData, progress: Progress):
    """(what the batches go through, train split, val split) when only the head learns: the
    splits become the backbone's features, computed once, when nothing random touches the
    images (finetune.py)."""
    learning = freeze_backbone(model)
    cached = config.train.cache_features and not needs_images_each_epoch(config)
    log.info("backbone frozen: %s parameters learn (the head%s)%s", f"{learning:,}",
             " and pre-logits" if getattr(model, "pre_logits", None) is not None else "",
             "; the images' features are computed once" if cached else "")
    if not cached:
        return HeadTraining(model, on_features=False), data.train, data.val
    batch = config.data.eval_batch_size or config.data.batch_size
    return (HeadTraining(model, on_features=True),
            feature_set(model, data.train, batch, progress, "features of the training images"),
            feature_set(model, data.val, batch, progress, "features of the validation images"))


def build_configured_model(config: Config, num_classes: int, resume_from: Optional[Path]):
    """The configured model (pretrained weights unless resuming) and its plain arguments."""
    kwargs = model_kwargs_from_config(config, num_classes)
    with paddle.utils.unique_name.guard():  # parameter names, and so optimizer keys, are stable
        if config.model.pretrained and resume_from is None:
            published = build_pretrained(config.model.name, config.model.pretrained, **kwargs)
            return published.model, to_plain(published.args)
        model = create_model(config.model.name, **kwargs)
    return model, to_plain(model_args(config.model.name, **kwargs))


def resume_training(path: Path, model, optimizer, scheduler, ema, checkpointer: Checkpointer):
    """Restore everything a checkpoint holds; refuse one made for another model."""
    weights, meta, training = load_checkpoint(path, with_training_state=True)
    refuse_differences(checkpoint_record(path, meta).differences(checkpointer.model),
                       f"cannot resume from {path}: it holds a different model",
                       "resume with the config the run was started with")
    load_state_dict_strict(model, weights, path, "resume with the config the run was started "
                           "with, or start a new run")
    with warnings.catch_warnings():
        # Paddle's LinearWarmup restores its decay's state from its own key, which the base
        # class then counts as unused and warns about on every resume with warmup
        warnings.filterwarnings("ignore", message="There are some unused values in state_dict")
        optimizer.set_state_dict(training["optimizer"])
        scheduler.set_state_dict(training["scheduler"])
    if ema is not None and training.get("ema"):
        ema.set_state_dict(training["ema"], f"the EMA weights in {path.with_suffix('.pdopt')}")
    # the thresholds of the last validation, for the checkpoints saved before the next one
    checkpointer.model = checkpointer.model.with_thresholds(
        checkpoint_record(path, meta).preprocessing.thresholds)
    loop = training["loop"]
    state = LoopState(**{k: loop[k] for k in LoopState.__dataclass_fields__})
    log.info("resuming from %s: epoch %d, step %d", path, state.epoch + 1, state.global_step)
    return state, training["metrics"]


def eval_loader(dataset, config: Config, runtime: Runtime):
    """Evaluation batches in dataset order, each rank its share."""
    return build_loader(dataset, config.data.eval_batch_size or config.data.batch_size, False,
                        rank=runtime.rank, world_size=runtime.world_size,
                        num_workers=config.data.num_workers)
