"""DataLoaders over ImageSets with seeded batch order and skipping of unreadable images, and how
fast they deliver."""

import time

import paddle

from .datasets import ImageSet, collate_skipping
from .sampler import EpochBatchSampler


def build_loader(dataset: ImageSet, batch_size: int, train: bool, seed: int = 0, rank: int = 0,
                 world_size: int = 1, num_workers: int = 0,
                 buffered: bool = True, balanced: bool = False,
                 epoch_fraction: float = 1.0) -> paddle.io.DataLoader:
    """A DataLoader yielding dicts of `images` [B, C, H, W], `labels` [B] (0/1 [B, K] for
    several labels per image) and `skipped` names.

    Training batches come in a seeded order per epoch (`loader.batch_sampler.set_epoch`);
    evaluation keeps the dataset order. `buffered`: Paddle's reader thread prepares the next
    batch while the caller works on this one. `balanced`: training batches draw every class
    equally often (sampler.py), from the dataset's `labels`. `epoch_fraction`: passes over
    the dataset per training epoch (sampler.py).
    """
    sampler = EpochBatchSampler(len(dataset), batch_size, shuffle=train, seed=seed, rank=rank,
                                world_size=world_size,
                                class_labels=dataset.labels if balanced else None,
                                epoch_fraction=epoch_fraction)
    return paddle.io.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_skipping,
                                num_workers=num_workers, use_shared_memory=num_workers > 0,
                                use_buffer_reader=buffered)


def loader_throughput(dataset: ImageSet, batch_size: int = 128, num_workers: int = 0,
                      epochs: int = 1, seed: int = 0) -> dict:
    """Images per second the training DataLoader yields (decode, augment, collate), model-free.

    The first batch is excluded so worker start-up is not counted as throughput. Loading in the
    main process runs without Paddle's reader thread, which has no model to overlap with here:
    a worker forked for the next measurement while a thread held the lock of Paddle's memory
    statistics starts with that lock held, and hung on it (seen once in the suite).
    """
    loader = build_loader(dataset, batch_size, True, seed=seed, num_workers=num_workers,
                          buffered=num_workers > 0)
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
