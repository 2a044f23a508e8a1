"""Training's inner loop: `train_one_epoch` (DeiT's engine, in Paddle); evaluation is
`evaluation.evaluate`.

`train_one_epoch` owns no state between calls: the caller passes the position (`LoopState`) and
gets it back advanced, which is what makes exact resume and interruption simple.
"""

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from typing import Callable, Optional

import numpy as np
import paddle
from tqdm import tqdm

from ..data.mixing import Mixing, mix_batch
from ..errors import VitError, param
from ..progress import Progress
from .losses import TrainingLoss
from .runtime import step_seed

log = logging.getLogger(__name__)


class NonFiniteLoss(VitError):
    """The loss became NaN or infinite."""


@dataclass
class LoopState:
    """Where training stands: the epoch, batches done in it, optimizer steps so far, and the
    running sums of this epoch's loss."""

    epoch: int = 0
    batch_in_epoch: int = 0
    global_step: int = 0
    loss_sum: float = 0.0
    loss_count: int = 0
    images: int = 0
    skipped: int = 0

    def as_dict(self) -> dict:
        return asdict(self)

    def next_epoch(self) -> "LoopState":
        """The position at the start of the next epoch (this epoch's sums cleared)."""
        return LoopState(epoch=self.epoch + 1, global_step=self.global_step, images=self.images,
                         skipped=self.skipped)


@dataclass
class StepControl:
    """What the loop needs besides model and data."""

    seed: int
    mixing: Mixing
    loss: TrainingLoss = field(default_factory=TrainingLoss)
    accum_steps: int = 1
    log_every: int = 10
    amp_dtype: Optional[str] = None  # "float16" / "bfloat16" on GPU, None for float32
    scaler: Optional[paddle.amp.GradScaler] = None
    ema: Optional[object] = None
    on_step: Optional[Callable[[int, float, float], None]] = None  # (global_step, loss, lr)
    should_stop: Callable[[], bool] = lambda: False
    show_progress: bool = True
    progress: Progress = None


def train_one_epoch(model, loader, optimizer, scheduler, state: LoopState, control: StepControl,
                    num_epochs: int) -> bool:
    """Train on the batches `loader` yields (the rest of epoch `state.epoch`), advancing `state`.

    Returns:
        True when the epoch finished, False when `control.should_stop()` asked to stop (checked
        after each optimizer step, so the state is always at a step boundary).

    Raises:
        NonFiniteLoss: the loss became NaN or infinite; the message names epoch and step.
    """
    model.train()
    total_batches = state.batch_in_epoch + len(loader)
    bar = tqdm(total=total_batches, initial=state.batch_in_epoch, leave=False, dynamic_ncols=True,
               desc=f"epoch {state.epoch + 1}/{num_epochs}", disable=not control.show_progress)
    started, images_at_start = time.perf_counter(), state.images
    window = []  # losses of the batches since the last logged step
    try:
        for batch in loader:
            window += _learn_from(model, batch, state, control)
            last = state.batch_in_epoch + 1 == total_batches
            state.batch_in_epoch += 1
            if state.batch_in_epoch % control.accum_steps == 0 or last:
                window = _step(model, optimizer, scheduler, state, control, window)
                if control.should_stop() and not last:
                    return False
            rate = (state.images - images_at_start) / max(time.perf_counter() - started, 1e-9)
            _show_progress(bar, state, control, rate, f"epoch {state.epoch + 1}/{num_epochs}",
                           total_batches)
    finally:
        bar.close()
    return True


def _learn_from(model, batch, state: LoopState, control: StepControl) -> list:
    """Forward and backward pass of one batch (the gradients add up until the next step);
    its loss, or none for a batch whose every image was unreadable."""
    images, labels = batch["images"], batch["labels"]
    state.skipped += len(batch["skipped"])
    if images.shape[0] == 0:
        return []
    try:
        return [_forward_backward(model, images, labels, state, control, state.batch_in_epoch)]
    except MemoryError:
        raise VitError(f"out of memory with a batch of {images.shape[0]} images",
                       f"lower {param('data.batch_size')} and raise "
                       f"{param('train.accum_steps')} to keep the effective batch") from None


def _step(model, optimizer, scheduler, state: LoopState, control: StepControl,
          window: list) -> list:
    """One optimizer and schedule step (and the EMA's), logged every `log_every` steps;
    returns the losses still to be logged."""
    lr = optimizer.get_lr()
    _optimizer_step(optimizer, control)
    scheduler.step()
    state.global_step += 1
    if control.ema is not None:
        control.ema.update(model)
    if control.on_step and state.global_step % control.log_every == 0 and window:
        control.on_step(state.global_step, float(np.mean(window)), lr)
        return []
    return window


def _show_progress(bar, state: LoopState, control: StepControl, rate: float, stage: str,
                   total_batches: int):
    bar.set_postfix(loss=f"{state.loss_sum / max(state.loss_count, 1):.4f}", img_s=f"{rate:.0f}")
    bar.update(1)
    if control.progress:
        control.progress(stage, state.batch_in_epoch, total_batches)


def _forward_backward(model, images, labels, state: LoopState, control: StepControl, index: int):
    paddle.seed(step_seed(control.seed, state.epoch, index))
    rng = np.random.default_rng(step_seed(control.seed, state.epoch, index))
    images, targets = mix_batch(images, labels, control.mixing, rng)
    with paddle.amp.auto_cast(enable=control.amp_dtype is not None,
                              dtype=control.amp_dtype or "float16"):
        logits = model(images)
    loss = control.loss(logits.astype("float32"), targets)
    value = float(loss.item())
    if not math.isfinite(value):
        raise NonFiniteLoss(f"the loss became {value} at epoch {state.epoch + 1}, step "
                            f"{state.global_step + 1}", f"lower {param('optim.lr')}, set "
                            f"{param('optim.grad_clip')}, or resume from the last checkpoint")
    scaled = loss / control.accum_steps
    if control.scaler is not None:
        scaled = control.scaler.scale(scaled)
    scaled.backward()
    batch_size = images.shape[0]
    state.loss_sum += value * batch_size
    state.loss_count += batch_size
    state.images += batch_size
    return value


def _optimizer_step(optimizer, control: StepControl):
    if control.scaler is not None:
        control.scaler.step(optimizer)
        control.scaler.update()
    else:
        optimizer.step()
    optimizer.clear_grad()


def epoch_record(state: LoopState, images_before: int, seconds: float, lr: float,
                 distributed: bool = False) -> dict:
    """The epoch's train loss and speed over all ranks (a validation's figures are added when
    due: run_log.VAL_FIGURES)."""
    loss_sum, loss_count, images = state.loss_sum, state.loss_count, state.images - images_before
    if distributed:  # every rank saw its own share: report the whole
        totals = paddle.to_tensor([loss_sum, float(loss_count), float(images)], dtype="float64")
        paddle.distributed.all_reduce(totals)
        loss_sum, loss_count, images = totals.numpy().tolist()
    return {"epoch": state.epoch + 1, "global_step": state.global_step,
            "train_loss": loss_sum / max(loss_count, 1),
            "lr": lr, "seconds": round(seconds, 3),
            "images_per_s": round(images / max(seconds, 1e-9), 1)}
