"""`train(config)`: the whole run, from data to a tested best checkpoint.

Order of a run: runtime (device, threads, process group) -> data and its report -> model ->
optimizer and schedule -> resume if asked -> epochs of `train_one_epoch` + `evaluate` with a
checkpoint after each -> test evaluation of the best checkpoint -> figures. Everything is written
into the run folder; only rank 0 writes under data parallelism.
"""

import logging
import math
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, Optional

import paddle

from ..config import Config, to_plain
from ..data.builder import prepare_data
from ..data.mixing import Mixing
from ..data.stats import format_stats
from ..errors import CheckpointError, VitError
from ..models import create_model, model_args
from . import checkpoint as ckpt
from .builders import model_kwargs_from_config, resolve_image_size
from .data_report import write_data_report
from .ema import ModelEma
from .loaders import build_loader
from .loop import LoopState, StepControl, evaluate, train_one_epoch
from .optim import build_optimizer, build_scheduler
from .run_dir import create_run_dir, run_dir_for
from .run_log import RunLog, load_metrics
from .runtime import Runtime, seed_everything, setup_runtime

log = logging.getLogger(__name__)


class TrainingInterrupted(VitError):
    """SIGINT or SIGTERM arrived; a checkpoint was saved first."""


@dataclass
class RunResult:
    run_dir: Path
    best_val_top1: Optional[float]
    best_checkpoint: Optional[Path]
    test: Dict[str, float] = field(default_factory=dict)
    figures: Dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def visualdl_command(self) -> str:
        return f"visualdl --logdir {self.run_dir / 'vdl'}"


class _StopRequest:
    """Turns SIGINT/SIGTERM into a flag the loop checks at the next optimizer step."""

    def __init__(self):
        self.signal_name = None
        self._previous = {}

    def __enter__(self):
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread (the web app): no signals to catch
                pass
        return self

    def _handle(self, signum, frame):
        if self.signal_name is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.signal_name = signal.Signals(signum).name
        log.warning("%s received: saving a checkpoint at the next step, then stopping "
                    "(press Ctrl-C again to stop at once)", self.signal_name)

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def __call__(self) -> bool:
        return self.signal_name is not None


def train(config: Config, progress: Optional[Callable[[str, int, int], None]] = None,
          stop: Optional[Callable[[], bool]] = None) -> RunResult:
    """Run the training that `config` describes; return where its results are.

    Args:
        config: the resolved configuration.
        progress: called as progress(stage, done, total) during long work (the web app's bar).
        stop: polled after each optimizer step; returning True saves a checkpoint and stops
            the run like SIGINT does.

    Raises:
        TrainingInterrupted: on SIGINT/SIGTERM or `stop`, after saving a checkpoint.
        NonFiniteLoss: the loss became NaN or infinite (the last epoch checkpoint is kept).
        VitError: for mistakes in the config, data or checkpoint.
    """
    started = time.perf_counter()
    runtime = setup_runtime(config.train.device, config.train.num_threads)
    amp_dtype = _amp_dtype(config.train.amp, runtime)
    seed_everything(config.train.seed)

    resume_from = ckpt.find_resume_checkpoint(config.train.resume) if config.train.resume else None
    data = prepare_data(config, resolve_image_size(config), progress)
    run_dir = resume_from.parent.parent if resume_from else None
    if runtime.is_main and run_dir is None:
        _refuse_to_overwrite(run_dir_for(config))
    run_dir = create_run_dir(config, run_dir) if runtime.is_main else run_dir
    file_log = _log_to_file(run_dir / "train.log") if runtime.is_main else None
    try:
        return _run(config, runtime, data, run_dir, resume_from, amp_dtype, progress, stop,
                    started)
    finally:
        if file_log is not None:
            logging.getLogger("vit").removeHandler(file_log)
            file_log.close()


@dataclass
class _Session:
    """Everything one run holds while it trains, so the steps below take one argument."""

    config: Config
    runtime: Runtime
    data: object  # PreparedData
    run_dir: Optional[Path]
    model: paddle.nn.Layer
    train_model: paddle.nn.Layer  # the model, wrapped in DataParallel when distributed
    optimizer: object
    scheduler: object
    ema: Optional[ModelEma]
    run_log: RunLog
    meta_base: dict
    train_loader: object
    val_loader: object
    steps_per_epoch: int

    @property
    def checkpoints(self) -> Optional[Path]:
        return self.run_dir / "checkpoints" if self.run_dir else None

    def eval_loader(self, dataset):
        return build_loader(dataset, self.config.data.eval_batch_size or self.config.data.batch_size,
                            False, rank=self.runtime.rank, world_size=self.runtime.world_size,
                            num_workers=self.config.data.num_workers)


def _run(config, runtime: Runtime, data, run_dir, resume_from, amp_dtype, progress, stop, started):
    kwargs = model_kwargs_from_config(config, data.num_classes)
    args = model_args(config.model.name, **kwargs)
    with paddle.utils.unique_name.guard():  # parameter names, and so optimizer keys, are stable
        model = create_model(config.model.name, **kwargs)
    if config.model.pretrained and resume_from is None:
        from ..models.weights import load_pretrained

        load_pretrained(model, config.model.pretrained)
    train_loader = build_loader(data.train, config.data.batch_size, True, config.train.seed,
                                runtime.rank, runtime.world_size, config.data.num_workers)
    steps_per_epoch = math.ceil(len(train_loader.batch_sampler) / config.train.accum_steps)
    scheduler = build_scheduler(config.optim, config.train.epochs, steps_per_epoch)
    optimizer = build_optimizer(config.optim, model, scheduler)
    ema = ModelEma(model, config.train.ema_decay) if config.train.ema_decay else None
    state, metrics = LoopState(), None
    if resume_from is not None:
        state, metrics = _resume(resume_from, model, optimizer, scheduler, ema, config, args,
                                 data.num_classes)
    session = _Session(config, runtime, data, Path(run_dir) if run_dir else None, model,
                       paddle.DataParallel(model) if runtime.distributed else model, optimizer,
                       scheduler, ema, RunLog(run_dir, runtime.is_main, metrics),
                       _model_meta(config, data, args), train_loader, None, steps_per_epoch)
    session.val_loader = session.eval_loader(data.val)
    try:
        if runtime.is_main and resume_from is None:
            log.info("%s\n", format_stats(data.stats))
            for name, path in write_data_report(data, run_dir, config.data.split_seed).items():
                if name != "stats":
                    session.run_log.image(f"data/{name}", path)
        _train_epochs(session, state, amp_dtype, progress, stop)
        return _finish(session, started)
    finally:
        session.run_log.close()  # flushes the VisualDL scalars of an interrupted run too


def _train_epochs(session: _Session, state: LoopState, amp_dtype, progress, stop):
    """Epoch after epoch: train, evaluate, checkpoint; stop cleanly when asked."""
    config, runtime = session.config, session.runtime
    mixing = Mixing(session.data.num_classes, config.augment.mixup_alpha,
                    config.augment.cutmix_alpha, config.augment.mix_prob,
                    config.augment.label_smoothing)
    with _StopRequest() as signalled:
        control = StepControl(
            seed=config.train.seed, mixing=mixing, accum_steps=config.train.accum_steps,
            log_every=config.train.log_every, amp_dtype=amp_dtype,
            scaler=paddle.amp.GradScaler() if amp_dtype == "float16" else None, ema=session.ema,
            on_step=session.run_log.step,
            should_stop=lambda: _agreed(signalled() or bool(stop and stop()), runtime),
            show_progress=runtime.is_main and sys.stderr.isatty(), progress=progress)
        if runtime.is_main:
            _log_start(session, state)
        while state.epoch < config.train.epochs:
            epoch_started, images_before = time.perf_counter(), state.images
            session.train_loader.batch_sampler.set_epoch(state.epoch, state.batch_in_epoch)
            try:
                finished = train_one_epoch(session.train_model, session.train_loader,
                                           session.optimizer, session.scheduler, state, control,
                                           config.train.epochs)
            except MemoryError:
                raise VitError(f"out of memory with data.batch_size={config.data.batch_size}",
                               "lower data.batch_size and raise train.accum_steps to keep the "
                               "effective batch") from None
            if not finished:
                path = _save(session, "interrupted", state)
                raise TrainingInterrupted(
                    f"stopped at epoch {state.epoch + 1}, step {state.global_step}; checkpoint "
                    f"saved as {path}", f"resume with -o train.resume={session.run_dir}")
            record = _end_of_epoch(session, state, time.perf_counter() - epoch_started,
                                   images_before)
            session.run_log.epoch(record)
            if runtime.is_main:
                _log_epoch(record, config.train.epochs)
            state = LoopState(epoch=state.epoch + 1, global_step=state.global_step,
                              images=state.images, skipped=state.skipped)
            _save_epoch(session, state, record)
            if control.should_stop() and state.epoch < config.train.epochs:
                raise TrainingInterrupted(f"stopped after epoch {state.epoch}", "resume with "
                                          f"-o train.resume={session.run_dir}")


def _agreed(stop_here: bool, runtime: Runtime) -> bool:
    """Under data parallelism every rank must stop at the same step, or the next collective
    waits forever: a stop asked for on any rank is a stop on all."""
    if not runtime.distributed:
        return stop_here
    flag = paddle.to_tensor([1 if stop_here else 0], dtype="int32")
    paddle.distributed.all_reduce(flag, op=paddle.distributed.ReduceOp.MAX)
    return bool(flag.item())


def _refuse_to_overwrite(path: Path):
    if (path / "metrics.json").exists() or (path / "checkpoints").exists():
        raise VitError(f"{path} already holds a run", "choose another output.run_name, or "
                       f"continue it with -o train.resume={path}")


def _amp_dtype(amp: str, runtime: Runtime) -> Optional[str]:
    if amp == "off":
        return None
    if runtime.device == "cpu":
        log.warning("train.amp=%s needs a GPU; training in float32 on the CPU", amp)
        return None
    return {"fp16": "float16", "bf16": "bfloat16"}[amp]


def _model_meta(config: Config, data, args: dict) -> dict:
    return {"model": {"name": config.model.name, "args": to_plain(args)},
            "num_classes": data.num_classes, "class_names": list(data.class_names),
            "image_size": data.image_size, "mean": list(data.mean), "std": list(data.std),
            "interpolation": config.augment.interpolation, "crop_pct": config.augment.crop_pct,
            "config": config.to_dict()}


def _resume(path, model, optimizer, scheduler, ema, config, args, num_classes):
    state_dict, meta, training = ckpt.load_checkpoint(path, with_training_state=True)
    differences = ckpt.architecture_differences(meta, config.model.name, to_plain(args),
                                                num_classes)
    if differences:
        raise CheckpointError(f"cannot resume from {path}: it holds a different model "
                              f"({'; '.join(differences)})",
                              "resume with the config the run was started with")
    model.set_state_dict(state_dict)
    optimizer.set_state_dict(training["optimizer"])
    scheduler.set_state_dict(training["scheduler"])
    if ema is not None and training.get("ema"):
        ema.set_state_dict(training["ema"])
    loop = training["loop"]
    state = LoopState(**{k: loop[k] for k in LoopState.__dataclass_fields__})
    log.info("resuming from %s: epoch %d, step %d", path, state.epoch + 1, state.global_step)
    return state, training["metrics"]


def _save(session: _Session, tag: str, state: LoopState, metrics: Optional[dict] = None):
    """Checkpoint `tag` with everything needed to resume (rank 0 only)."""
    if not session.runtime.is_main:
        return None
    best = session.run_log.metrics
    meta = {**session.meta_base, "epoch": state.epoch, "batch_in_epoch": state.batch_in_epoch,
            "global_step": state.global_step, "metrics": metrics or {},
            "best_val_top1": best.get("best_val_top1"), "best_epoch": best.get("best_epoch")}
    training = {"optimizer": session.optimizer.state_dict(),
                "scheduler": session.scheduler.state_dict(),
                "ema": session.ema.state_dict() if session.ema else None,
                "loop": state.as_dict(), "metrics": session.run_log.metrics}
    return ckpt.save_checkpoint(session.checkpoints, tag, session.model.state_dict(), meta,
                                training)


def _end_of_epoch(session: _Session, state: LoopState, seconds, images_before) -> dict:
    """The epoch's record: train loss and speed over all ranks, and val metrics when due."""
    config, runtime, model, ema = session.config, session.runtime, session.model, session.ema
    epoch = state.epoch + 1
    loss_sum, loss_count, images = state.loss_sum, state.loss_count, state.images - images_before
    if runtime.distributed:  # every rank saw its own share: report the whole
        totals = paddle.to_tensor([loss_sum, float(loss_count), float(images)], dtype="float64")
        paddle.distributed.all_reduce(totals)
        loss_sum, loss_count, images = totals.numpy().tolist()
    record = {"epoch": epoch, "global_step": state.global_step,
              "train_loss": loss_sum / max(loss_count, 1),
              "val_loss": None, "val_top1": None, "val_top5": None,
              "lr": float(session.optimizer.get_lr()), "seconds": round(seconds, 3),
              "images_per_s": round(images / max(seconds, 1e-9), 1)}
    if epoch % config.train.eval_every == 0 or epoch == config.train.epochs:
        own = ema.swap_into(model) if ema else None
        result = evaluate(model, session.val_loader, session.data.num_classes,
                          distributed=runtime.distributed)
        if own is not None:
            model.set_state_dict(own)
        record.update(val_loss=result["loss"], val_top1=result["top1"], val_top5=result["top5"])
    return record


def _save_epoch(session: _Session, state: LoopState, record: dict):
    """The epoch checkpoint, the best one when val top-1 improved, and pruning."""
    if not session.runtime.is_main:
        return
    folder = session.checkpoints
    _save(session, f"epoch_{state.epoch:03d}", state, metrics=record)
    for suffix in (".json", ".pdparams", ".pdopt"):  # a finished epoch supersedes it
        (folder / f"interrupted{suffix}").unlink(missing_ok=True)
    if session.run_log.metrics.get("best_epoch") == record["epoch"]:
        ema = session.ema
        meta = {**session.meta_base, "epoch": state.epoch, "global_step": state.global_step,
                "metrics": record, "best_val_top1": record["val_top1"],
                "best_epoch": record["epoch"], "ema": bool(ema)}
        ckpt.save_checkpoint(folder, "best", ema.shadow if ema else session.model.state_dict(),
                             meta)
    ckpt.prune_epoch_checkpoints(folder, session.config.train.keep_checkpoints)


def _finish(session: _Session, started) -> RunResult:
    """Test the best checkpoint, draw the figures, and say where everything is."""
    from ..viz import save_figure
    from ..viz.training_figures import plot_accuracy, plot_comparison, plot_training_loss

    config, run_dir, run_log, data = session.config, session.run_dir, session.run_log, session.data
    best = run_dir / "checkpoints" / "best.pdparams" if run_dir else None
    if best is not None and best.is_file():
        state_dict, _, _ = ckpt.load_checkpoint(best)
        session.model.set_state_dict(state_dict)
    test = evaluate(session.model, session.eval_loader(data.test), data.num_classes,
                    distributed=session.runtime.distributed)
    test = {key: test[key] for key in ("top1", "top5", "loss", "num_samples")}
    result = RunResult(run_dir, run_log.metrics.get("best_val_top1"),
                       best if best is not None and best.is_file() else None, test)
    if not session.runtime.is_main:
        return result
    run_log.set("test", test)
    figures = run_dir / "figures"
    result.figures["loss"] = save_figure(plot_training_loss(run_log.metrics), figures / "loss.png")
    result.figures["accuracy"] = save_figure(plot_accuracy(run_log.metrics),
                                             figures / "accuracy.png")
    if config.train.compare_with:
        runs = {Path(p).name: load_metrics(p) for p in config.train.compare_with}
        runs[run_dir.name] = run_log.metrics
        result.figures["comparison"] = save_figure(plot_comparison(runs),
                                                   figures / "comparison.png")
    result.seconds = time.perf_counter() - started
    log.info("test (best checkpoint): top-1 %.4f  top-5 %.4f  loss %.4f  on %d images",
             test["top1"], test["top5"], test["loss"], test["num_samples"])
    log.info("run folder: %s (%.0f s)", run_dir, result.seconds)
    log.info("dashboard: %s", result.visualdl_command)
    return result


def _log_start(session: _Session, state: LoopState):
    config, data, runtime = session.config, session.data, session.runtime
    log.info("run %s: %s (%s classes, %d train / %d val / %d test images) on %s%s",
             session.run_dir, config.model.name, data.num_classes, len(data.train),
             len(data.val), len(data.test), runtime.device,
             f" x{runtime.world_size}" if runtime.distributed else "")
    log.info("%d epochs of %d steps, batch %d x %d accumulation, %s lr %g, from epoch %d",
             config.train.epochs, session.steps_per_epoch, config.data.batch_size,
             config.train.accum_steps, config.optim.name, config.optim.lr, state.epoch + 1)


def _log_epoch(record: dict, epochs: int):
    val = ""
    if record["val_top1"] is not None:
        val = (f"  val_loss {record['val_loss']:.4f}  val_top1 {record['val_top1']:.4f}  "
               f"val_top5 {record['val_top5']:.4f}")
    log.info("epoch %d/%d  train_loss %.4f%s  lr %.2e  %.1fs  %.0f img/s", record["epoch"],
             epochs, record["train_loss"], val, record["lr"], record["seconds"],
             record["images_per_s"])


def _log_to_file(path) -> logging.Handler:
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("vit")
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    return handler
