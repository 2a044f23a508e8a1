"""Throughput measurements: how fast the input pipeline delivers training images."""

import time

from ..data.datasets import ImageSet
from .loaders import build_loader


def loader_throughput(dataset: ImageSet, batch_size: int = 128, num_workers: int = 0,
                      epochs: int = 1, seed: int = 0) -> dict:
    """Images per second the training DataLoader yields (decode, augment, collate), model-free.

    The first batch is excluded so worker start-up is not counted as throughput.
    """
    loader = build_loader(dataset, batch_size, True, seed=seed, num_workers=num_workers)
    images, started = 0, None
    for epoch in range(epochs):
        loader.batch_sampler.set_epoch(epoch)
        for batch in loader:
            if started is None:
                started = time.perf_counter()
                continue
            images += int(batch["labels"].shape[0])
    seconds = time.perf_counter() - started if started else 0.0
    return {"images": images, "seconds": round(seconds, 3),
            "images_per_s": round(images / seconds, 1) if seconds else 0.0,
            "batch_size": batch_size, "num_workers": num_workers}
