"""DataLoaders over ImageSets with seeded batch order and skipping of unreadable images."""

import paddle

from ..data.datasets import ImageSet, collate_skipping
from .sampler import EpochBatchSampler


def build_loader(dataset: ImageSet, batch_size: int, train: bool, seed: int = 0, rank: int = 0,
                 world_size: int = 1, num_workers: int = 0) -> paddle.io.DataLoader:
    """A DataLoader yielding dicts of `images` [B, C, H, W], `labels` [B] and `skipped` names.

    Training batches come in a seeded order per epoch (`loader.batch_sampler.set_epoch`);
    evaluation keeps the dataset order.
    """
    sampler = EpochBatchSampler(len(dataset), batch_size, shuffle=train, seed=seed, rank=rank,
                                world_size=world_size)
    return paddle.io.DataLoader(dataset, batch_sampler=sampler, collate_fn=collate_skipping,
                                num_workers=num_workers, use_shared_memory=num_workers > 0)
