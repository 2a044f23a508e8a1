"""`train(config)`: the whole run, from data to a tested best checkpoint.

Order of a run: the config's checks (`checked_config`: published weights' preprocessing where
the config leaves it, names) -> runtime (device, threads, process group) -> the run folder's
checks (the folder is free, or the checkpoint to resume is complete) -> data and its report ->
what it trains with (training_setup.py: the model, a frozen backbone, optimizer and schedule,
the state of a checkpoint to resume) ->
epochs of `train_one_epoch` + `evaluate` with a checkpoint after each (`_fit`, the loop in one
place) -> test evaluation of the best checkpoint -> figures. Everything is written into the
run folder; only rank 0 writes under data parallelism.
"""

import contextlib
import logging
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Optional, Tuple

import paddle

from ..config import Config
from ..data.builder import PreparedData, prepare_data
from ..data.mixing import Mixing
from ..data.sources import get_source
from ..errors import ConfigError, VitError, param
from ..models import is_vit
from ..models.weights import load_state_dict_strict
from ..progress import Progress
from .builders import model_kwargs_from_config, resolve_image_size, with_weights_preprocessing
from .checkpoint import checkpoint_record, find_resume_checkpoint, load_checkpoint
from .compare import draw_run_figures
from .data_report import log_data_report
from .evaluation import evaluate, model_logits
from .loop import LoopState, StepControl, epoch_record, train_one_epoch
from .run_folder import RunFolder
from .training_setup import Training, eval_loader, setup_training
from .run_log import (SCORE_WORDS, RunLog, RunStatus, copy_log_to, format_epoch, format_scores,
                      task_of)
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
    best_val: Optional[float]  # the best epoch's validation figure that picked it
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
        # Paddle names optimizer moments by a per-process count (`moment1_3` after three runs)
        # and a resumed run looks them up by its own process's: each run counts from zero
        with _ending_recorded(status), paddle.utils.unique_name.guard():
            result = _fit(config, runtime, data, run_dir, resume_from, progress, stop, status)
        result.seconds = time.perf_counter() - started
        status.end("finished", f"test {format_scores(result.test)}", result.best_checkpoint)
        if runtime.is_main:
            log.info("run folder: %s (%.0f s)", run_dir, result.seconds)
            log.info("dashboard: %s", result.visualdl_command)
    return result


@contextlib.contextmanager
def _ending_recorded(status: RunStatus):
    """Record in `status.json` how a run that raised ended: stopped, or failed and why."""
    try:
        yield
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


def checked_config(config: Config) -> Config:
    """The checks `train` makes of a config before any work, needing no data and no run folder:
    published weights in `model.pretrained` belong to `model.name` (their preprocessing is
    taken), the model and the data source exist, `train.recompute` has blocks to recompute.
    Returns the config the run uses.

    Raises:
        VitError: naming the key that is wrong.
    """
    config = with_weights_preprocessing(config)
    model_kwargs_from_config(config)
    if config.train.recompute and not is_vit(config.model.name):
        raise ConfigError(f"{param('train.recompute')} recomputes Transformer blocks, and "
                          f"{config.model.name} has none",
                          f"set {param('train.recompute', 'false')}")
    get_source(config.data.source)
    return config


def _preflight(config: Config, runtime: Runtime) -> Tuple[Path, Optional[Path]]:
    """The run folder's checks, before minutes of data work: the checkpoint to resume is
    complete, or else the run folder is free. Returns (run folder, checkpoint to resume or
    None)."""
    if config.train.resume:
        resume_from = find_resume_checkpoint(config.train.resume)
        run_folder = RunFolder.holding(resume_from) or RunFolder.for_config(config)
        return run_folder.path, resume_from
    run_folder = RunFolder.for_config(config)
    if runtime.is_main:
        run_folder.refuse_if_taken()
    return run_folder.path, None


def _fit(config: Config, runtime: Runtime, data: PreparedData, run_dir: Path,
         resume_from: Optional[Path], progress: Progress, stop, status: RunStatus) -> RunResult:
    """Build model, optimizer and loaders, then train epoch after epoch: train, evaluate,
    checkpoint; stop cleanly when asked. The loop is here, in one place."""
    run = setup_training(config, runtime, data, run_dir, resume_from, progress)
    try:
        if runtime.is_main:
            if resume_from is None:
                log_data_report(data, run_dir, config.data.split_seed, run.run_log)
            _log_start(config, data, runtime, run_dir, run.steps_per_epoch, run.state)
        train_model = (paddle.DataParallel(run.forward_model) if runtime.distributed
                       else run.forward_model)
        status.begin(config.train.epochs, run.steps_per_epoch, config.data.batch_size,
                     run.state.global_step)
        resume_hint = f"resume with {param('train.resume', str(run_dir))}"
        with StopRequest(stop, runtime) as stop_requested:
            control = _step_control(config, run, status, stop_requested, runtime, progress)
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


def _train_epoch(config: Config, runtime: Runtime, run: Training, train_model, control,
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


def _step_control(config: Config, run: Training, status: RunStatus, stop_requested,
                  runtime: Runtime, progress: Progress) -> StepControl:
    augment, dtype = config.augment, amp_dtype(config.train.amp, runtime)
    return StepControl(
        seed=config.train.seed, accum_steps=config.train.accum_steps,
        mixing=Mixing(run.num_classes, augment.mixup_alpha, augment.cutmix_alpha,
                      augment.mix_prob, augment.label_smoothing), loss=run.loss,
        log_every=config.train.log_every, amp_dtype=dtype,
        scaler=paddle.amp.GradScaler() if dtype == "float16" else None, ema=run.ema,
        on_step=lambda step, loss, lr: (run.run_log.step(step, loss, lr),
                                        status.step(step, loss)),
        should_stop=stop_requested,
        show_progress=runtime.is_main and sys.stderr.isatty(), progress=progress)


def _val_record(run: Training, runtime: Runtime) -> dict:
    """The validation figures (`run_log.VAL_FIGURES`), of the EMA weights when there are any.
    Multilabel: the thresholds chosen on these images go into the record the next
    checkpoints carry."""
    own = run.ema.swap_into(run.model) if run.ema else None
    multilabel = run.loss.multilabel
    result, _ = evaluate(model_logits(run.forward_model), run.val_loader, run.num_classes,
                         runtime.distributed, multilabel=multilabel)
    if own is not None:
        load_state_dict_strict(run.model, own, "the model's own weights")
    if multilabel:
        run.checkpointer.model = run.checkpointer.model.with_thresholds(result["thresholds"])
        return {"val_loss": result["loss"], "val_map": result["map"]}
    return {"val_loss": result["loss"], "val_top1": result["top1"], "val_top5": result["top5"],
            "val_balanced_accuracy": result["balanced_accuracy"]}


def _finish(config: Config, runtime: Runtime, data: PreparedData, run_dir: Path, model,
            run_log: RunLog) -> RunResult:
    """Test the best checkpoint (multilabel: by the thresholds it records) and draw the
    figures."""
    best = RunFolder(run_dir).best_checkpoint
    thresholds = ()
    if runtime.is_main and best.is_file():
        weights, meta, _ = load_checkpoint(best)
        load_state_dict_strict(model, weights, best)
        thresholds = checkpoint_record(best, meta).preprocessing.thresholds
    if runtime.distributed:  # every rank tests the weights (and thresholds) rank 0 chose
        for value in model.state_dict().values():
            paddle.distributed.broadcast(value, src=0)
        shared = [thresholds]
        paddle.distributed.broadcast_object_list(shared, src=0)
        thresholds = shared[0]
    test, _ = evaluate(model_logits(model), eval_loader(data.test, config, runtime),
                       data.num_classes, runtime.distributed,
                       multilabel=data.preprocessing.multilabel, thresholds=thresholds)
    test = _test_record(test, data.class_names)
    by = run_log.metrics["best_by"]
    result = RunResult(run_dir, run_log.metrics.get(f"best_{by}"),
                       best if best.is_file() else None, test)
    if runtime.is_main:
        run_log.set("test", test)
        result.figures = draw_run_figures(run_dir, run_log.metrics, config.train.compare_with)
        log.info("test (best checkpoint): %s  on %d images", format_scores(test),
                 test["num_samples"])
    return result


def _test_record(scores: dict, class_names) -> dict:
    """What metrics.json keeps of the test evaluation: the task's figures, and per class the
    recall (multiclass) or F1 (multilabel)."""
    per_class = "f1" if task_of(scores) == "multilabel" else "recall"
    kept = [key for key, _ in SCORE_WORDS[task_of(scores)]]
    return {**{key: scores[key] for key in ("task", *kept, "num_samples")},
            per_class: dict(zip(class_names, scores[per_class]))}


def _log_start(config: Config, data: PreparedData, runtime: Runtime, run_dir: Path,
               steps_per_epoch: int, state: LoopState):
    log.info("run %s: %s (%s classes, %d train / %d val / %d test images) on %s%s", run_dir,
             config.model.name, data.num_classes, len(data.train), len(data.val), len(data.test),
             runtime.device, f" x{runtime.world_size}" if runtime.distributed else "")
    log.info("%d epochs of %d steps, batch %d x %d accumulation, %s lr %g, from epoch %d",
             config.train.epochs, steps_per_epoch, config.data.batch_size,
             config.train.accum_steps, config.optim.name, config.optim.lr, state.epoch + 1)
