"""What a ViT's embeddings learned (Dosovitskiy et al. 2021, Figure 7 left and centre): the
principal components of the patch-embedding filters, and how similar each patch position's
embedding is to every other's.
"""

from typing import Tuple

import numpy as np

from ..errors import ModelError


def position_similarity(pos_embed: np.ndarray, grid: Tuple[int, int],
                        num_prefix_tokens: int = 1) -> np.ndarray:
    """Cosine similarity of every patch position's embedding to every other's.

    Args:
        pos_embed: [1, prefix + rows x columns, D] (the model's own, resampled or not).
        grid: the model's patch grid (rows, columns).
        num_prefix_tokens: leading tokens that are not patches (the class token).

    Returns:
        [rows, columns, rows, columns]: entry (i, j, k, l) compares position (i, j) with (k, l).
    """
    embeddings = np.asarray(pos_embed, dtype=np.float64).reshape(-1, np.shape(pos_embed)[-1])
    patches = embeddings[num_prefix_tokens:]
    if len(patches) != grid[0] * grid[1]:
        raise ModelError(f"{len(patches)} position embeddings do not form a "
                         f"{grid[0]}x{grid[1]} grid", "pass the model's grid_size")
    unit = patches / np.clip(np.linalg.norm(patches, axis=1, keepdims=True), 1e-12, None)
    return (unit @ unit.T).reshape(grid[0], grid[1], grid[0], grid[1])


def filter_components(weight: np.ndarray, count: int = 28) -> Tuple[np.ndarray, np.ndarray]:
    """The principal components of the patch-embedding filters.

    PCA runs over the filters: each of the D output channels is one sample of C x P x P
    numbers (not the other way round; for ViT-B/16 both are 768, so the swap would pass
    silently).

    Args:
        weight: the patch convolution's kernel [D, C, P, P].
        count: how many components to return (at most min(D, C x P x P)).

    Returns:
        (components [count, C, P, P], each of unit norm and sign fixed so its largest entry is
        positive; the share of the variance each explains [count]).
    """
    weight = np.asarray(weight, dtype=np.float64)
    samples = weight.reshape(weight.shape[0], -1)  # [D, C*P*P]: one row per filter
    centred = samples - samples.mean(axis=0, keepdims=True)
    _, singular, components = np.linalg.svd(centred, full_matrices=False)
    count = min(count, len(components))
    components = components[:count]
    largest = np.take_along_axis(components, np.abs(components).argmax(1)[:, None], 1)
    components = components * np.sign(largest)
    variance = singular ** 2
    share = variance[:count] / max(variance.sum(), 1e-300)
    return components.reshape(count, *weight.shape[1:]), share


def as_rgb_tiles(components: np.ndarray) -> np.ndarray:
    """[K, C, P, P] components -> [K, P, P, 3] images in [0, 1], each scaled on its own (a
    one-channel model's components are shown in grey)."""
    tiles = np.moveaxis(np.asarray(components, dtype=np.float64), 1, -1)  # [K, P, P, C]
    if tiles.shape[-1] == 1:
        tiles = np.repeat(tiles, 3, axis=-1)
    low = tiles.min(axis=(1, 2, 3), keepdims=True)
    high = tiles.max(axis=(1, 2, 3), keepdims=True)
    return (tiles - low) / np.where(high > low, high - low, 1.0)
