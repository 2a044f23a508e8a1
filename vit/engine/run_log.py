"""A run's record: VisualDL scalars for the live dashboard, `metrics.json` for everything that
reads a run (figures, comparisons, the web app, tests) and `status.json`, what the run is doing
right now, for whatever watches it from outside. The trainer writes all three through this
module: `RunLog` and `RunStatus` during training, `log_evaluation` after it. The one other
writer is the web app (`vit.app.runs`), which puts a `starting` status into the folder of a run
it launches, before the trainer's process is up to write its own."""

import contextlib
import json
import logging
import os
import time
from pathlib import Path
from typing import Optional

import numpy as np

from ..errors import ConfigError, VitError, param
from ..files import write_text_atomic
from .run_folder import RunFolder

log = logging.getLogger(__name__)

# What a validation adds to an epoch's record, by task (`val_` + the evaluation's figure).
VAL_FIGURES = ("val_loss", "val_top1", "val_top5", "val_balanced_accuracy", "val_map")
# The figures of an evaluation's line, by task: (key, how it is named in the line).
SCORE_WORDS = {"multiclass": (("top1", "top-1"), ("top5", "top-5"),
                              ("balanced_accuracy", "balanced accuracy"), ("loss", "loss")),
               "multilabel": (("map", "mAP"), ("exact_match", "exact match"),
                              ("hamming_loss", "Hamming loss"), ("loss", "loss"))}


def best_figure(select_best_by: str, task: str) -> str:
    """The record key of `train.select_best_by` (`auto`: the task's headline figure)."""
    if select_best_by == "auto":
        return "val_map" if task == "multilabel" else "val_top1"
    return f"val_{select_best_by}"


class RunLog:
    """Scalars of one run. On ranks other than 0 every method does nothing.

    Args:
        run_dir: the run folder (VisualDL writes to `run_dir/vdl`); None on ranks other than 0.
        metrics: an earlier `metrics.json` content to continue (resume).
    """

    def __init__(self, run_dir, metrics: Optional[dict] = None, best_by: str = "val_top1",
                 task: str = "multiclass"):
        self.run_dir = Path(run_dir) if run_dir else None
        self.enabled = run_dir is not None
        self.metrics = metrics or {"history": [], "steps": [], "best_epoch": None}
        if self.metrics.get("best_by", best_by) != best_by:
            raise ConfigError(f"this run picked its best epoch by {self.metrics['best_by']}, "
                              f"and {param('train.select_best_by')} now asks for {best_by}",
                              "resume with the config the run was started with")
        self.metrics.update(best_by=best_by, task=task)
        self.writer = None
        self._written = 0.0
        if self.enabled:
            from visualdl import LogWriter

            self.writer = LogWriter(logdir=str(self.vdl_dir))

    @property
    def vdl_dir(self) -> Path:
        return RunFolder(self.run_dir).visualdl_dir

    @property
    def metrics_path(self) -> Path:
        return RunFolder(self.run_dir).metrics_file

    def step(self, global_step: int, loss: float, lr: float):
        """Training loss and learning rate after optimizer step `global_step`."""
        if not self.enabled:
            return
        self.writer.add_scalar("train/loss", loss, global_step)
        self.writer.add_scalar("train/lr", lr, global_step)
        self.metrics["steps"].append([global_step, round(float(loss), 6), float(lr)])
        if time.monotonic() - self._written > 2.0:  # live curves, without a write per step
            self.write()

    def epoch(self, record: dict):
        """One epoch's summary (`epoch_record`, with the `VAL_FIGURES` of a validation); keeps
        the best epoch's figures."""
        if not self.enabled:
            return
        step = record["global_step"]
        for key, tag in (("train_loss", "train/epoch_loss"), ("images_per_s", "train/images_per_s"),
                         *((key, key.replace("val_", "val/")) for key in VAL_FIGURES)):
            if record.get(key) is not None:
                self.writer.add_scalar(tag, record[key], step)
        self.metrics["history"].append(record)
        if self._improves(record):
            self.metrics.update({f"best_{key}": record[key] for key in VAL_FIGURES
                                 if record.get(key) is not None}, best_epoch=record["epoch"])
        self.write()

    def _improves(self, record: dict) -> bool:
        """A higher `best_by` figure is better; at an equal one (common on small val splits,
        where one image is a whole step) the lower val loss wins."""
        by = self.metrics["best_by"]
        value, best = record.get(by), self.metrics.get(f"best_{by}")
        if value is None:
            return False
        if best is None or value > best:
            return True
        best_loss = self.metrics.get("best_val_loss")
        return value == best and best_loss is not None and record["val_loss"] < best_loss

    @property
    def best_epoch(self) -> Optional[int]:
        return self.metrics.get("best_epoch")

    def image(self, tag: str, path, step: int = 0):
        """Show a PNG (a data figure) in VisualDL's image tab."""
        if self.enabled:
            _add_png(self.writer, tag, path, step)

    def set(self, key: str, value):
        if self.enabled:
            self.metrics[key] = value
            self.write()

    def write(self):
        if self.enabled:
            write_text_atomic(self.metrics_path, json.dumps(self.metrics, indent=1) + "\n")
            self._written = time.monotonic()
            if self.writer is not None:
                self.writer.flush()

    def close(self):
        if self.writer is not None:
            self.writer.close()
            self.writer = None


class RunStatus:
    """`status.json` in the run folder: the state (preparing, running, finished, stopped,
    failed), the position (epoch, step of steps), images/s, seconds left, and at the end a
    message and the checkpoint to resume from. Disabled (`run_dir` None) on ranks other than 0.
    """

    def __init__(self, run_dir: Optional[Path]):
        self.path = RunFolder(run_dir).status_file if run_dir else None
        self.fields = {"state": "preparing", "pid": os.getpid()}
        self._clock = None  # (monotonic time, global step) when steps began to count
        self._written = 0.0

    def begin(self, epochs: int, steps_per_epoch: int, batch_size: int, global_step: int):
        """Training starts (or resumes) at `global_step`."""
        self.fields.update(state="running", epochs=epochs, steps=epochs * steps_per_epoch,
                           steps_per_epoch=steps_per_epoch, step=global_step,
                           epoch=global_step // max(steps_per_epoch, 1) + 1,
                           batch_size=batch_size)
        self._clock = (time.monotonic(), global_step)
        self.write()

    def step(self, global_step: int, loss: Optional[float] = None):
        """After an optimizer step (the loss of the last logged ones, when there is a new one);
        written at most once a second."""
        started, first = self._clock or (time.monotonic(), global_step)
        rate = (global_step - first) / max(time.monotonic() - started, 1e-9)
        per_epoch = self.fields.get("steps_per_epoch", 1) or 1
        self.fields.update(step=global_step, epoch=min((global_step - 1) // per_epoch + 1,
                                                       self.fields.get("epochs", 1)),
                           images_per_s=round(rate * self.fields.get("batch_size", 0), 1),
                           seconds_left=round((self.fields.get("steps", 0) - global_step)
                                              / rate) if rate > 0 else None)
        if loss is not None:
            self.fields["loss"] = round(float(loss), 5)
        if time.monotonic() - self._written > 1.0:
            self.write()

    def end(self, state: str, message: str = "", checkpoint: Optional[str] = None):
        """The run ended: finished, stopped (with the checkpoint to resume) or failed."""
        self.fields.update(state=state, message=message, seconds_left=0 if state == "finished"
                           else self.fields.get("seconds_left"))
        if checkpoint:
            self.fields["checkpoint"] = str(checkpoint)
        self.write()

    def write(self):
        if self.path is not None:
            self.fields["updated"] = time.time()
            write_text_atomic(self.path, json.dumps(self.fields, indent=1) + "\n")
            self._written = time.monotonic()


def read_status(run_dir) -> dict:
    """A run's `status.json`, or {} when it has none (yet)."""
    try:
        return json.loads(RunFolder(run_dir).status_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _add_png(writer, tag: str, path, step: int):
    from PIL import Image

    with Image.open(path) as picture:
        writer.add_image(tag, np.asarray(picture.convert("RGB")), step)


def log_evaluation(vdl_dir, split: str, metrics: dict):
    """Add an evaluation's accuracy, loss and figures (`metrics["paths"]`) to a VisualDL log."""
    from visualdl import LogWriter

    with LogWriter(logdir=str(vdl_dir)) as writer:
        for key in ("top1", "top5", "balanced_accuracy", "map", "exact_match", "loss"):
            if key in metrics:
                writer.add_scalar(f"eval/{split}/{key}", metrics[key], 0)
        for key in ("confusion_png", "mistakes", "pr_curves"):
            if key in metrics["paths"]:
                _add_png(writer, f"eval/{split}/{key}", metrics["paths"][key], 0)


def load_metrics(run_dir) -> dict:
    """The `metrics.json` of a finished or running run."""
    path = RunFolder(run_dir).metrics_file
    if not path.is_file():
        raise VitError(f"{path} does not exist", "give a run folder written by the trainer")
    return json.loads(path.read_text(encoding="utf-8"))


def format_epoch(record: dict, epochs: int) -> str:
    """One log line for an epoch's record."""
    val = "".join(f"  {key} {record[key]:.4f}" for key in VAL_FIGURES
                  if record.get(key) is not None)
    return (f"epoch {record['epoch']}/{epochs}  train_loss {record['train_loss']:.4f}{val}  "
            f"lr {record['lr']:.2e}  {record['seconds']:.1f}s  {record['images_per_s']:.0f} img/s")


def task_of(scores: dict) -> str:
    """The task an evaluation's figures (or a run's `metrics.json`) are of, as recorded;
    files written before there was a choice are multiclass."""
    return scores.get("task", "multiclass")


def format_scores(scores: dict) -> str:
    """An evaluation's figures in one line: `top-1 0.9749  top-5 ...` (multiclass) or
    `mAP 0.95  exact match ...` (multilabel)."""
    return "  ".join(f"{words} {scores[key]:.4f}" for key, words in SCORE_WORDS[task_of(scores)]
                     if scores.get(key) is not None)


@contextlib.contextmanager
def copy_log_to(path: Optional[Path]):
    """Copy the package's INFO log into `path` (train.log) while the block runs."""
    if path is None:
        yield
        return
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logger = logging.getLogger("vit")
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > logging.INFO:
        logger.setLevel(logging.INFO)
    try:
        yield
    finally:
        logger.removeHandler(handler)
        handler.close()
