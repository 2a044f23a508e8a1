"""How every benchmark times one thing: the median of `repeats` timed runs after `warmup`
untimed ones, and the row of the benchmark table that holds it."""

import dataclasses
import time
from typing import Callable, Optional

import numpy as np


@dataclasses.dataclass
class Timing:
    """One row of the benchmark table."""

    path: str
    batch: int
    seconds: Optional[float]  # median seconds per batch; None when the path cannot run here
    gflop_per_image: float
    note: str = ""

    @property
    def images_per_s(self) -> Optional[float]:
        return self.batch / self.seconds if self.seconds else None

    @property
    def gflops(self) -> Optional[float]:
        return 2 * self.gflop_per_image * self.batch / self.seconds if self.seconds else None


def median_seconds(run: Callable[[], object], repeats: int = 5, warmup: int = 2) -> float:
    """Median wall time of `run()` over `repeats` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        run()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return float(np.median(times))
