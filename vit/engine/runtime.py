"""Where and how the computation runs: device, CPU threads, seeds, data parallelism, and the
stop requests (Ctrl-C, SIGTERM, a web app's button) that end a run at a step boundary."""

import logging
import os
import random
import signal
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import paddle

from .. import cpu
from ..errors import ConfigError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Runtime:
    device: str  # "cpu" or "gpu:N"
    rank: int
    world_size: int

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def gpu_available() -> bool:
    """Whether this Paddle build has CUDA and sees at least one GPU."""
    return paddle.device.is_compiled_with_cuda() and paddle.device.cuda.device_count() > 0


def setup_runtime(device: str = "auto", num_threads: int = 0) -> Runtime:
    """Choose the device, set CPU threads, and join the process group under
    `paddle.distributed.launch` (gloo on CPU, NCCL on GPU)."""
    if device == "gpu" and not gpu_available():
        raise ConfigError("train.device=gpu but this Paddle has no usable GPU",
                          "install paddlepaddle-gpu, or set train.device=cpu")
    use_gpu = device == "gpu" or (device == "auto" and gpu_available())
    world_size = int(os.environ.get("PADDLE_TRAINERS_NUM", "1"))
    rank = int(os.environ.get("PADDLE_TRAINER_ID", "0"))
    if use_gpu:
        name = f"gpu:{paddle.distributed.ParallelEnv().device_id}" if world_size > 1 else "gpu"
    else:
        name = "cpu"
        # `num_threads`, or (0) one per core, or the user's own VIT_PADDLE_NUM_THREADS /
        # OMP_NUM_THREADS (vit/cpu.py); the kernels run on the same count
        cpu.configure(num_threads)
    paddle.set_device(name)
    if world_size > 1:
        paddle.distributed.init_parallel_env()
        rank, world_size = paddle.distributed.get_rank(), paddle.distributed.get_world_size()
    return Runtime(device=name, rank=rank, world_size=world_size)


def seed_everything(seed: int):
    """Seed Python, NumPy and Paddle (weights initialisation; per-step seeds come later)."""
    random.seed(seed)
    np.random.seed(seed % (2 ** 32))
    paddle.seed(seed)


def step_seed(seed: int, epoch: int, batch: int) -> int:
    """Seed for the randomness of one training step (dropout, drop path, Mixup/CutMix), so a
    resumed run draws exactly what an uninterrupted one would."""
    return int(np.random.SeedSequence([seed, epoch, batch, 7]).generate_state(1)[0])


def amp_dtype(amp: str, runtime: Runtime) -> Optional[str]:
    """Paddle's AMP dtype for `train.amp` on this runtime; None trains in float32 (also on a
    CPU, with a warning)."""
    if amp == "off":
        return None
    if runtime.device == "cpu":
        log.warning("train.amp=%s needs a GPU; training in float32 on the CPU", amp)
        return None
    return {"fp16": "float16", "bf16": "bfloat16"}[amp]


class StopRequest:
    """Turns SIGINT/SIGTERM, or a caller's `stop()` returning True, into a request that the
    training loop checks after each optimizer step (so a checkpoint is always at a step
    boundary). Use as a context manager; the previous signal handlers come back on exit.

    Args:
        stop: polled at each check (the web app's stop button); None: signals only.
        runtime: under data parallelism, a request on any rank is a request on all, or the
            next collective would wait forever.
    """

    def __init__(self, stop: Optional[Callable[[], bool]] = None,
                 runtime: Optional[Runtime] = None):
        self.stop = stop
        self.runtime = runtime
        self.signal_name = None
        self._previous = {}

    def __enter__(self):
        for signum in (signal.SIGINT, signal.SIGTERM):
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread: there are no signals to catch
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
        """Whether to stop now (the same answer on every rank)."""
        asked = self.signal_name is not None or bool(self.stop and self.stop())
        if self.runtime is None or not self.runtime.distributed:
            return asked
        flag = paddle.to_tensor([1 if asked else 0], dtype="int32")
        paddle.distributed.all_reduce(flag, op=paddle.distributed.ReduceOp.MAX)
        return bool(flag.item())
