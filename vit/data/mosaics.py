"""scikit-learn's embedded 8x8 digits, alone (the `digits` source) and as a multi-label set
(`digit_mosaics`): 16x16 mosaics of 2x2 tiles, each labelled with the digits it shows.

No digit image appears in two splits: the 1,797 digits are split first, stratified by
`data.val_fraction`/`data.test_fraction`/`data.split_seed` exactly as the `digits` source is
split, and each split's mosaics are composed only of that split's digits.
"""

from typing import Dict, NamedTuple

import numpy as np

from ..config import DataConfig
from ..errors import ConfigError, param
from .datasets import ArrayImageSet, DataBundle, stratified_indices

TILE = 8  # side of a digit in pixels; a mosaic is 2 x 2 tiles
FILLED = 0.75  # chance that a tile holds a digit (else it stays blank, 0)
MOSAICS_PER_DIGIT = {"train": 4, "val": 2, "test": 2}  # mosaics per digit image of the split
DIGIT_NAMES = [str(digit) for digit in range(10)]


def digit_images():
    """(pixels uint8 [1797, 8, 8] scaled to 0-255, digit [1797]) of scikit-learn's digits."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    # 17 grey levels (0-16) scaled to 0-255
    return np.round(digits.images * (255.0 / 16.0)).astype(np.uint8), digits.target


class Mosaics(NamedTuple):
    """The mosaics of one split: pixels uint8 [M, 16, 16], labels 0/1 int64 [M, 10], and the
    digit image in each tile, int64 [M, 4] (row-major; -1 for a blank tile)."""

    pixels: np.ndarray
    labels: np.ndarray
    tiles: np.ndarray


def compose_mosaics(pixels: np.ndarray, digits: np.ndarray, chosen: np.ndarray, count: int,
                    rng: np.random.Generator) -> Mosaics:
    """`count` mosaics of digit images drawn (with replacement) from `chosen`.

    Each tile holds a digit with probability `FILLED`; a mosaic left all blank gets one digit
    in a random tile, so every mosaic carries at least one label.
    """
    filled = rng.random((count, 4)) < FILLED
    blank = np.flatnonzero(~filled.any(axis=1))
    filled[blank, rng.integers(0, 4, len(blank))] = True
    tiles = np.where(filled, rng.choice(chosen, (count, 4)), -1)
    tile_pixels = pixels[np.maximum(tiles, 0)] * filled[:, :, None, None]  # [M, 4, 8, 8]
    # [M, row, column, y, x] -> [M, row, y, column, x] -> [M, 16, 16]
    mosaic = tile_pixels.reshape(count, 2, 2, TILE, TILE).transpose(0, 1, 3, 2, 4)
    labels = np.zeros((count, len(DIGIT_NAMES)), dtype=np.int64)
    rows, places = np.nonzero(filled)
    labels[rows, digits[tiles[rows, places]]] = 1
    return Mosaics(mosaic.reshape(count, 2 * TILE, 2 * TILE).astype(np.uint8), labels,
                   tiles.astype(np.int64))


def mosaic_splits(val_fraction: float, test_fraction: float, seed: int) -> Dict[str, Mosaics]:
    """The mosaics of train, val and test, each made from its own share of the digits.

    With the default fractions (0.1, 0.2) the digits split 1,258 / 180 / 359, which gives
    5,032 train, 360 val and 718 test mosaics (`MOSAICS_PER_DIGIT` per digit image of the
    split). The same fractions and seed give the same mosaics.
    """
    pixels, digits = digit_images()
    parts = stratified_indices(digits, [None, val_fraction, test_fraction], seed)
    return {split: compose_mosaics(pixels, digits, chosen, MOSAICS_PER_DIGIT[split] * len(chosen),
                                   np.random.default_rng([seed, number]))
            for number, (split, chosen) in enumerate(zip(MOSAICS_PER_DIGIT, parts))}


def digit_mosaics_source(config: DataConfig, progress=None) -> DataBundle:
    """The `digit_mosaics` source: all three splits, with 0/1 labels [M, 10] (nothing carved).

    Raises:
        ConfigError: unless `data.task` is multilabel (a mosaic shows several digits).
    """
    if config.task != "multilabel":
        raise ConfigError(f"data.source=digit_mosaics has several labels per image, but "
                          f"data.task is {config.task}", f"set {param('data.task', 'multilabel')}")
    splits = mosaic_splits(config.val_fraction, config.test_fraction, config.split_seed)
    return DataBundle("digit_mosaics", list(DIGIT_NAMES), {
        split: ArrayImageSet(mosaics.pixels, mosaics.labels, DIGIT_NAMES,
                             name=f"digit_mosaics/{split}")
        for split, mosaics in splits.items()})
