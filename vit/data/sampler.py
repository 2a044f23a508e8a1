"""Which images go into which batch, reproducibly: the order depends only on (seed, epoch).

Each index is handed to the dataset together with its own seed, so augmentation of an image is a
function of (seed, pass, index) alone (the pass is the epoch, below): the same with any number of workers, and the same when a
run resumes in the middle of an epoch. Under data parallelism each rank takes every
world_size-th batch position of the same permutation (Paddle's DistributedBatchSampler scheme).

A class-balanced order (`data.sampler: balanced`) draws as many images as the split holds, with
replacement, each class with equal chance (an image's chance is 1 / (classes present x its
class's count)), as PyTorch's WeightedRandomSampler is used for imbalance: rare images recur
within an epoch, common ones are left out of it. The draw depends only on (seed, epoch) too,
so it is resumed and shared among ranks exactly like the permutation.

An epoch may be a share of a pass (`data.epoch_fraction`): the passes' orders follow one another
as one stream and epoch e takes the e-th stretch of it, so five epochs of 0.2 are one pass
evaluated five times, and 3.5 is three and a half passes per epoch, each image augmented afresh
in each of its passes. With 1.0 epoch e is pass e.
"""

import numpy as np
import paddle


def sample_seed(seed: int, epoch: int, index: int) -> int:
    """A 32-bit seed for augmenting image `index` in `epoch` (in pass `epoch`, when epochs are
    shares of passes)."""
    return int(np.random.SeedSequence([seed, epoch, index]).generate_state(1)[0])


class EpochBatchSampler(paddle.io.BatchSampler):
    """Batches of (index, sample seed) pairs in a seeded order.

    Args:
        num_samples: images in the split.
        batch_size: images per batch on this rank.
        shuffle: permute the order each epoch (training) or keep it (evaluation).
        seed: the run's seed.
        rank, world_size: this process's share under data parallelism.
        drop_last: leave out a last, smaller batch.
        class_labels: the images' class indices [N] for a class-balanced draw (training only);
            None: a permutation.
        epoch_fraction: passes over the split per epoch (training only).
    """

    def __init__(self, num_samples: int, batch_size: int, shuffle: bool, seed: int = 0,
                 rank: int = 0, world_size: int = 1, drop_last: bool = False,
                 class_labels=None, epoch_fraction: float = 1.0):
        self.num_samples = num_samples
        self.epoch_fraction = epoch_fraction if shuffle else 1.0
        self.chances = None if class_labels is None else balanced_chances(class_labels)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_last = drop_last
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0):
        """Use the order of `epoch`, skipping the first `start_batch` batches (resume)."""
        self.epoch = epoch
        self.start_batch = start_batch

    def _order(self):
        """This epoch's image indices on this rank, and the pass each is drawn in."""
        length = max(1, round(self.num_samples * self.epoch_fraction))
        start = self.epoch * length  # in the passes' stream; 1.0: epoch e is pass e
        first, last = start // self.num_samples, (start + length - 1) // self.num_samples
        stream = np.concatenate([self._pass_order(p) for p in range(first, last + 1)])
        offset = start - first * self.num_samples
        order = stream[offset:offset + length]
        passes = (start + np.arange(length)) // self.num_samples
        if self.world_size > 1:
            # every rank gets the same number of images: pad by wrapping around (training) or
            # take a strided share without padding (evaluation, so nothing is counted twice)
            if self.shuffle:
                total = -(-len(order) // self.world_size) * self.world_size
                order, passes = np.resize(order, total), np.resize(passes, total)
            order, passes = order[self.rank::self.world_size], passes[self.rank::self.world_size]
        return order, passes

    def _pass_order(self, index: int) -> np.ndarray:
        """The order of pass `index` over the split, before ranks take their shares."""
        rng = np.random.default_rng([self.seed, index])
        if self.shuffle and self.chances is not None:
            order = rng.choice(self.num_samples, self.num_samples, replace=True, p=self.chances)
        elif self.shuffle:
            order = rng.permutation(self.num_samples)
        else:
            order = np.arange(self.num_samples)
        return order

    def _batches(self):
        """[(indices, passes)] of this epoch's batches on this rank."""
        order, passes = self._order()
        stop = len(order) - len(order) % self.batch_size if self.drop_last else len(order)
        return [(order[i:i + self.batch_size], passes[i:i + self.batch_size])
                for i in range(0, stop, self.batch_size)]

    def __iter__(self):
        # an image's augmentation is seeded by the pass it is drawn in, which is the epoch
        # unless epochs are shares of passes (data.epoch_fraction)
        for indices, passes in self._batches()[self.start_batch:]:
            yield [(int(i), sample_seed(self.seed, int(p), int(i)))
                   for i, p in zip(indices, passes)]

    def __len__(self):
        return len(self._batches()) - self.start_batch


def balanced_chances(class_labels) -> np.ndarray:
    """Each image's chance of being drawn so that every class present is drawn equally often."""
    labels = np.asarray(class_labels, dtype=np.int64)
    counts = np.bincount(labels)
    chances = 1.0 / (np.count_nonzero(counts) * counts[labels])
    return chances / chances.sum()  # exact to rounding; choice() wants a sum of 1
