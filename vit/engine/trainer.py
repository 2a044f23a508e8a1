"""`train(config)`: the whole run, from data to a tested best checkpoint.

Order of a run: the config's checks (`checked_config`: published weights' preprocessing where
the config leaves it, names) -> runtime (device, threads, process group) -> the run folder's
checks (the folder is free, or the checkpoint to resume is complete) -> data and its report ->
model (published weights, a frozen backbone), optimizer and schedule -> resume if asked ->
epochs of `train_one_epoch` + `evaluate` with a checkpoint after each (`_fit`, the loop in one
place) -> test evaluation of the best checkpoint -> figures. Everything is written into the
run folder; only rank 0 writes under data parallelism.
"""

import logging
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import paddle

from ..config import Config, to_plain
from ..data.builder import PreparedData, prepare_data
from ..data.loaders import build_loader
from ..data.mixing import Mixing
from ..data.sources import get_source
from ..errors import VitError
from ..models import create_model, model_args
from ..models.pretrained import build_pretrained
from ..models.weights import load_state_dict_strict
from ..progress import Progress
from .builders import model_kwargs_from_config, resolve_image_size, with_weights_preprocessing
from .checkpoint import (Checkpointer, architecture_differences, find_resume_checkpoint,
                         load_checkpoint, model_record, refuse_other_architecture)
from .compare import draw_run_figures
from .data_report import log_data_report
from .ema import ModelEma
from .evaluation import evaluate, model_logits
from .finetune import HeadTraining, feature_set, freeze_backbone, needs_images_each_epoch
from .loop import LoopState, StepControl, epoch_record, train_one_epoch
from .optim import build_optimizer, build_scheduler
from .run_folder import RunFolder
from .run_log import RunLog, RunStatus, copy_log_to, format_epoch
from .runtime import Runtime, StopRequest, amp_dtype, seed_everything, setup_runtime

log = logging.getLogger(__name__)


class TrainingInterrupted(VitError):
    """SIGINT, SIGTERM or the caller's stop request arrived; a checkpoint was saved first
    (`checkpoint`, the one to resume from)."""

    def __init__(self, message: str, hint: str = "", checkpoint=None):
        super().__init__(message, hint)
        self.checkpoint = checkpoint


@dataclass
class RunResult:
    """Where a finished run's results are, and its headline numbers."""

    run_dir: Path
    best_val_top1: Optional[float]
    best_checkpoint: Optional[Path]
    test: Dict[str, float] = field(default_factory=dict)
    figures: Dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def visualdl_command(self) -> str:
        return RunFolder(self.run_dir).visualdl_command


def train(config: Config, progress: Progress = None,
          stop: Optional[Callable[[], bool]] = None) -> RunResult:
    """Run the training that `config` describes; return where its results are.

    Args:
        config: the resolved configuration.
        progress: called as progress(stage, done, total) during long work (a progress bar).
        stop: polled after each optimizer step; returning True saves a checkpoint and stops
            the run like SIGINT does.

    Raises:
        TrainingInterrupted: on SIGINT/SIGTERM or `stop`, after saving a checkpoint.
        NonFiniteLoss: the loss became NaN or infinite (the last epoch checkpoint is kept).
        VitError: for mistakes in the config, data or checkpoint.
    """
    started = time.perf_counter()
    config = checked_config(config)
    runtime = setup_runtime(config.train.device, config.train.num_threads)
    run_dir, resume_from = _preflight(config, runtime)
    seed_everything(config.train.seed)
    data = prepare_data(config, resolve_image_size(config), progress)
    if runtime.is_main:
        RunFolder(run_dir).create(config)
    status = RunStatus(run_dir if runtime.is_main else None)
    with copy_log_to(RunFolder(run_dir).train_log if runtime.is_main else None):
        try:
            result = _fit(config, runtime, data, run_dir, resume_from, progress, stop, status)
        except TrainingInterrupted as error:
            status.end("stopped", str(error), error.checkpoint)
            raise
        except KeyboardInterrupt:  # before the first step: there is nothing to resume
            status.end("stopped", "stopped before training began; start it again")
            raise
        except BaseException as error:
            status.end("failed", str(error) if isinstance(error, VitError)
                       else f"{type(error).__name__}: {error}")
            raise
        result.seconds = time.perf_counter() - started
        status.end("finished", f"test top-1 {result.test['top1']:.4f}",
                   result.best_checkpoint)
        if runtime.is_main:
            log.info("run folder: %s (%.0f s)", run_dir, result.seconds)
            log.info("dashboard: %s", result.visualdl_command)
    return result


def checked_config(config: Config) -> Config:
    """The checks `train` makes of a config before any work, needing no data and no run folder:
    published weights in `model.pretrained` belong to `model.name` (their preprocessing is
    taken), the model and the data source exist. Returns the config the run uses.

    Raises:
        VitError: naming the key that is wrong.
    """
    config = with_weights_preprocessing(config)
    model_kwargs_from_config(config)
    get_source(config.data.source)
    return config


def _preflight(config: Config, runtime: Runtime) -> Tuple[Path, Optional[Path]]:
    """The run folder's checks, before minutes of data work: the checkpoint to resume is
    complete, or else the run folder is free. Returns (run folder, checkpoint to resume or
    None)."""
    if config.train.resume:
        resume_from = find_resume_checkpoint(config.train.resume)
        return resume_from.parent.parent, resume_from
    run_folder = RunFolder.for_config(config)
    if runtime.is_main:
        run_folder.refuse_if_taken()
    return run_folder.path, None


@dataclass
class _Training:
    """What a run trains with, built once by `_setup`, and where the loop stands (`state`)."""

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
    state: LoopState

    def position(self) -> dict:
        """What a checkpoint's JSON records of where training stands."""
        return {"epoch": self.state.epoch, "batch_in_epoch": self.state.batch_in_epoch,
                "global_step": self.state.global_step,
                "best_val_top1": self.run_log.metrics.get("best_val_top1"),
                "best_epoch": self.run_log.best_epoch}

    def training_state(self) -> dict:
        """What a `.pdopt` holds: everything besides the weights needed to resume exactly."""
        return {"optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "ema": self.ema.state_dict() if self.ema else None,
                "loop": self.state.as_dict(), "metrics": self.run_log.metrics}


def _fit(config: Config, runtime: Runtime, data: PreparedData, run_dir: Path,
         resume_from: Optional[Path], progress: Progress, stop, status: RunStatus) -> RunResult:
    """Build model, optimizer and loaders, then train epoch after epoch: train, evaluate,
    checkpoint; stop cleanly when asked. The loop is here, in one place."""
    run = _setup(config, runtime, data, run_dir, resume_from, progress)
    try:
        if runtime.is_main:
            if resume_from is None:
                log_data_report(data, run_dir, config.data.split_seed, run.run_log)
            _log_start(config, data, runtime, run_dir, run.steps_per_epoch, run.state)
        train_model = (paddle.DataParallel(run.forward_model) if runtime.distributed
                       else run.forward_model)
        status.begin(config.train.epochs, run.steps_per_epoch, config.data.batch_size,
                     run.state.global_step)
        resume_hint = f"resume with -o train.resume={run_dir}"
        with StopRequest(stop, runtime) as stop_requested:
            control = _step_control(config, data.num_classes, run.ema, run.run_log, status,
                                    stop_requested, runtime, progress)
            while run.state.epoch < config.train.epochs:
                run.train_loader.batch_sampler.set_epoch(run.state.epoch,
                                                         run.state.batch_in_epoch)
                saved = _train_epoch(config, runtime, run, train_model, control, resume_hint)
                status.step(run.state.global_step)  # the epoch's last step, logged or not
                if stop_requested() and run.state.epoch < config.train.epochs:
                    raise TrainingInterrupted(f"stopped after epoch {run.state.epoch}",
                                              resume_hint, saved)
        return _finish(config, runtime, data, run_dir, run.model, run.run_log)
    finally:
        run.run_log.close()  # flushes the VisualDL scalars of an interrupted run too


def _setup(config: Config, runtime: Runtime, data: PreparedData, run_dir: Path,
           resume_from: Optional[Path], progress: Progress) -> _Training:
    """Model (pretrained or resumed), loaders, optimizer, schedule, EMA, checkpointer and log."""
    model, args = _build_model(config, data.num_classes, resume_from)
    forward_model, train_set, val_set = model, data.train, data.val
    if config.train.freeze == "backbone":
        forward_model, train_set, val_set = _frozen_backbone(config, model, data, progress)
    train_loader = build_loader(train_set, config.data.batch_size, True, config.train.seed,
                                runtime.rank, runtime.world_size, config.data.num_workers)
    steps_per_epoch = math.ceil(len(train_loader.batch_sampler) / config.train.accum_steps)
    scheduler = build_scheduler(config.optim, config.train.epochs, steps_per_epoch)
    optimizer = build_optimizer(config.optim, model, scheduler)
    ema = ModelEma(model, config.train.ema_decay) if config.train.ema_decay else None
    checkpointer = Checkpointer(RunFolder(run_dir).checkpoints, model_record(
        config.model.name, args, data.num_classes, data.preprocessing.to_dict(),
        config.to_dict()), config.train.keep_checkpoints, enabled=runtime.is_main)
    state, history = (_resume(resume_from, model, optimizer, scheduler, ema, checkpointer)
                      if resume_from is not None else (LoopState(), None))
    return _Training(model, forward_model, optimizer, scheduler, ema, checkpointer,
                     RunLog(run_dir if runtime.is_main else None, metrics=history),
                     train_loader, _eval_loader(val_set, config, runtime), steps_per_epoch,
                     data.num_classes, state)


def _frozen_backbone(config: Config, model, data: PreparedData, progress: Progress):
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


def _train_epoch(config: Config, runtime: Runtime, run: _Training, train_model, control,
                 resume_hint: str) -> Optional[Path]:
    """Train the rest of the current epoch, validate when due, log and checkpoint it; return
    the epoch checkpoint.

    Raises:
        TrainingInterrupted: a stop was requested mid-epoch (an `interrupted` checkpoint is
            saved first).
    """
    state, started, images_before = run.state, time.perf_counter(), run.state.images
    if not train_one_epoch(train_model, run.train_loader, run.optimizer, run.scheduler, state,
                           control, config.train.epochs):
        path = run.checkpointer.save("interrupted", run.model.state_dict(), run.position(), {},
                                     run.training_state())
        raise TrainingInterrupted(f"stopped at epoch {state.epoch + 1}, step "
                                  f"{state.global_step}; checkpoint saved as {path}",
                                  resume_hint, path)
    record = epoch_record(state, images_before, time.perf_counter() - started,
                          float(run.optimizer.get_lr()), runtime.distributed)
    if record["epoch"] % config.train.eval_every == 0 or record["epoch"] == config.train.epochs:
        record.update(_val_record(run, runtime))
    run.run_log.epoch(record)
    if runtime.is_main:
        log.info(format_epoch(record, config.train.epochs))
    run.state = state.next_epoch()
    saved = run.checkpointer.save_epoch(run.state.epoch, run.model.state_dict(), run.position(),
                                        record, run.training_state())
    if run.run_log.best_epoch == record["epoch"]:
        run.checkpointer.save_best(run.ema.shadow if run.ema else run.model.state_dict(),
                                   run.position(), record, ema=run.ema is not None)
    return saved


def _build_model(config: Config, num_classes: int, resume_from: Optional[Path]):
    """The configured model (pretrained weights unless resuming) and its plain arguments."""
    kwargs = model_kwargs_from_config(config, num_classes)
    with paddle.utils.unique_name.guard():  # parameter names, and so optimizer keys, are stable
        if config.model.pretrained and resume_from is None:
            published = build_pretrained(config.model.name, config.model.pretrained, **kwargs)
            return published.model, to_plain(published.args)
        model = create_model(config.model.name, **kwargs)
    return model, to_plain(model_args(config.model.name, **kwargs))


def _resume(path: Path, model, optimizer, scheduler, ema, checkpointer: Checkpointer):
    """Restore everything a checkpoint holds; refuse one made for another model."""
    weights, meta, training = load_checkpoint(path, with_training_state=True)
    record = checkpointer.record
    refuse_other_architecture(
        architecture_differences(meta, record["model"]["name"], record["model"]["args"],
                                 record["num_classes"]),
        f"cannot resume from {path}: it holds a different model",
        "resume with the config the run was started with")
    load_state_dict_strict(model, weights, path, "resume with the config the run was started "
                           "with, or start a new run")
    optimizer.set_state_dict(training["optimizer"])
    scheduler.set_state_dict(training["scheduler"])
    if ema is not None and training.get("ema"):
        ema.set_state_dict(training["ema"], f"the EMA weights in {path.with_suffix('.pdopt')}")
    loop = training["loop"]
    state = LoopState(**{k: loop[k] for k in LoopState.__dataclass_fields__})
    log.info("resuming from %s: epoch %d, step %d", path, state.epoch + 1, state.global_step)
    return state, training["metrics"]


def _step_control(config: Config, num_classes: int, ema, run_log: RunLog, status: RunStatus,
                  stop_requested, runtime: Runtime, progress: Progress) -> StepControl:
    augment, dtype = config.augment, amp_dtype(config.train.amp, runtime)
    return StepControl(
        seed=config.train.seed, accum_steps=config.train.accum_steps,
        mixing=Mixing(num_classes, augment.mixup_alpha, augment.cutmix_alpha, augment.mix_prob,
                      augment.label_smoothing),
        log_every=config.train.log_every, amp_dtype=dtype,
        scaler=paddle.amp.GradScaler() if dtype == "float16" else None, ema=ema,
        on_step=lambda step, loss, lr: (run_log.step(step, loss, lr), status.step(step, loss)),
        should_stop=stop_requested,
        show_progress=runtime.is_main and sys.stderr.isatty(), progress=progress)


def _val_record(run: _Training, runtime: Runtime) -> dict:
    """Val loss and accuracy, of the EMA weights when there are any."""
    own = run.ema.swap_into(run.model) if run.ema else None
    result, _ = evaluate(model_logits(run.forward_model), run.val_loader, run.num_classes,
                         runtime.distributed)
    if own is not None:
        load_state_dict_strict(run.model, own, "the model's own weights")
    return {"val_loss": result["loss"], "val_top1": result["top1"], "val_top5": result["top5"]}


def _eval_loader(dataset, config: Config, runtime: Runtime):
    """Evaluation batches in dataset order, each rank its share."""
    return build_loader(dataset, config.data.eval_batch_size or config.data.batch_size, False,
                        rank=runtime.rank, world_size=runtime.world_size,
                        num_workers=config.data.num_workers)


def _finish(config: Config, runtime: Runtime, data: PreparedData, run_dir: Path, model,
            run_log: RunLog) -> RunResult:
    """Test the best checkpoint and draw the figures."""
    best = RunFolder(run_dir).best_checkpoint
    if runtime.is_main and best.is_file():
        load_state_dict_strict(model, load_checkpoint(best)[0], best)
    if runtime.distributed:  # every rank tests the weights rank 0 chose
        for value in model.state_dict().values():
            paddle.distributed.broadcast(value, src=0)
    test, _ = evaluate(model_logits(model), _eval_loader(data.test, config, runtime),
                       data.num_classes, runtime.distributed)
    test = {key: test[key] for key in ("top1", "top5", "loss", "num_samples")}
    result = RunResult(run_dir, run_log.metrics.get("best_val_top1"),
                       best if best.is_file() else None, test)
    if runtime.is_main:
        run_log.set("test", test)
        result.figures = draw_run_figures(run_dir, run_log.metrics, config.train.compare_with)
        log.info("test (best checkpoint): top-1 %.4f  top-5 %.4f  loss %.4f  on %d images",
                 test["top1"], test["top5"], test["loss"], test["num_samples"])
    return result


def _log_start(config: Config, data: PreparedData, runtime: Runtime, run_dir: Path,
               steps_per_epoch: int, state: LoopState):
    log.info("run %s: %s (%s classes, %d train / %d val / %d test images) on %s%s", run_dir,
             config.model.name, data.num_classes, len(data.train), len(data.val), len(data.test),
             runtime.device, f" x{runtime.world_size}" if runtime.distributed else "")
    log.info("%d epochs of %d steps, batch %d x %d accumulation, %s lr %g, from epoch %d",
             config.train.epochs, steps_per_epoch, config.data.batch_size,
             config.train.accum_steps, config.optim.name, config.optim.lr, state.epoch + 1)
