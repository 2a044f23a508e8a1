"""The training order: a seeded permutation, or a class-balanced draw with replacement; both
depend only on (seed, epoch), so a resumed run and every rank of a data-parallel one see the
order an uninterrupted single process sees."""

import numpy as np
import pytest

from vit.data.sampler import EpochBatchSampler, balanced_chances, sample_seed

# 100 images of 4 classes, 80 / 15 / 4 / 1: an imbalanced split
LABELS = np.repeat([0, 1, 2, 3], [80, 15, 4, 1])


def _indices(sampler):
    return [index for batch in sampler for index, _ in batch]


def _balanced(epoch=0, start=0, **kwargs):
    sampler = EpochBatchSampler(len(LABELS), 8, shuffle=True, seed=7, class_labels=LABELS,
                                **kwargs)
    sampler.set_epoch(epoch, start)
    return sampler


def test_every_class_is_equally_likely_and_images_within_a_class_too():
    chances = balanced_chances(LABELS)
    per_class = np.bincount(LABELS, weights=chances)
    np.testing.assert_allclose(per_class, 0.25)
    np.testing.assert_allclose(chances[LABELS == 0], chances[0])


def test_a_balanced_epoch_draws_the_classes_about_equally_often():
    drawn = np.concatenate([LABELS[_indices(_balanced(epoch))] for epoch in range(20)])
    shares = np.bincount(drawn, minlength=4) / len(drawn)  # 2,000 draws
    np.testing.assert_allclose(shares, 0.25, atol=0.04)
    assert len(_indices(_balanced())) == len(LABELS)  # an epoch is as long as the split


def test_the_draw_depends_only_on_seed_and_epoch_and_resumes_mid_epoch():
    assert _indices(_balanced(3)) == _indices(_balanced(3))
    assert _indices(_balanced(3)) != _indices(_balanced(4))
    assert _indices(_balanced(3, start=5)) == _indices(_balanced(3))[5 * 8:]


@pytest.mark.parametrize("class_labels", [None, LABELS], ids=["permutation", "balanced"])
def test_ranks_share_out_the_single_process_order(class_labels):
    def order(rank, world_size):
        sampler = EpochBatchSampler(len(LABELS), 5, shuffle=True, seed=3, rank=rank,
                                    world_size=world_size, class_labels=class_labels)
        sampler.set_epoch(2)
        return _indices(sampler)

    whole = order(0, 1)
    ranks = [order(rank, 2) for rank in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(whole) // 2
    interleaved = [index for pair in zip(*ranks) for index in pair]
    assert interleaved == whole


def _stream(fraction, epochs, start=0):
    """The indices of `epochs` epochs of a permutation sampler with `epoch_fraction`."""
    sampler = EpochBatchSampler(len(LABELS), 8, shuffle=True, seed=5, epoch_fraction=fraction)
    drawn = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch, start if epoch == 0 else 0)
        drawn += _indices(sampler)
    return drawn


def _passes(count):
    return [index for p in range(count) for index in _stream(1.0, p + 1)[p * 100:]]


@pytest.mark.parametrize("fraction,epochs,passes", [(0.2, 5, 1), (0.25, 12, 3), (2.5, 2, 5)])
def test_epochs_that_are_a_share_of_a_pass_run_on_through_the_passes(fraction, epochs, passes):
    """Epochs of any length take the passes' orders one after another, none left out or
    repeated: five epochs of 0.2 are exactly pass 0, two of 2.5 exactly passes 0-4."""
    stream = _stream(fraction, epochs)
    assert stream == _passes(passes)
    sampler = EpochBatchSampler(len(LABELS), 8, shuffle=True, seed=5, epoch_fraction=fraction)
    assert len(sampler) == -(-round(100 * fraction) // 8)  # steps of one epoch
    assert _stream(fraction, 1, start=2) == stream[:round(100 * fraction)][16:]  # resume


def test_an_image_drawn_again_within_an_epoch_is_augmented_afresh():
    """Its seed follows the pass it is drawn in, so 2.5 passes in one epoch give each image
    two or three different seeds; with 1.0 the pass is the epoch, as before."""
    sampler = EpochBatchSampler(len(LABELS), 8, shuffle=True, seed=5, epoch_fraction=2.5)
    sampler.set_epoch(1)
    pairs = [pair for batch in sampler for pair in batch]
    assert len(set(pairs)) == len(pairs) == 250
    whole = EpochBatchSampler(len(LABELS), 8, shuffle=True, seed=5)
    whole.set_epoch(3)
    assert {seed for batch in whole for _, seed in batch} == {
        sample_seed(5, 3, i) for i in range(100)}


def test_evaluation_ignores_the_epoch_fraction():
    sampler = EpochBatchSampler(len(LABELS), 8, shuffle=False, epoch_fraction=0.2)
    assert _indices(sampler) == list(range(100))
