"""Figures of what a ViT learned (the paper's Figures 6 and 7), drawn from arrays: attention
rollout over the image, the class token's attention per head, mean attention distance against
depth, position-embedding similarity, and the principal components of the patch filters."""

from typing import Optional, Sequence

import numpy as np
from matplotlib.figure import Figure


def upsample(heatmap: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour upsampling of a [rows, columns] map to the image's size (each patch
    keeps its own value, so nothing is invented between patches)."""
    rows = (np.arange(height) * heatmap.shape[0] // height).clip(0, heatmap.shape[0] - 1)
    columns = (np.arange(width) * heatmap.shape[1] // width).clip(0, heatmap.shape[1] - 1)
    return heatmap[rows][:, columns]


def plot_rollout(image: np.ndarray, heatmap: np.ndarray, title: str = "Attention rollout",
                 caption: str = "") -> Figure:
    """The image, the rollout map, and the map over the image (uint8 [H, W, 3] image)."""
    height, width = image.shape[:2]
    mask = upsample(heatmap, height, width)
    figure = Figure(figsize=(9.0, 3.4))
    panels = (("image", image, None), ("class-token rollout", heatmap, "inferno"),
              ("overlay", None, None))
    for column, (name, data, cmap) in enumerate(panels):
        axes = figure.add_subplot(1, 3, column + 1)
        if data is None:
            axes.imshow(image, interpolation="nearest")
            axes.imshow(mask, cmap="inferno", alpha=0.55, interpolation="nearest",
                        extent=(-0.5, width - 0.5, height - 0.5, -0.5))
        else:
            axes.imshow(data, cmap=cmap, interpolation="nearest")
        axes.set_title(name, fontsize=9)
        axes.set_xticks([])
        axes.set_yticks([])
    figure.suptitle(f"{title}{' - ' + caption if caption else ''}", fontsize=10)
    return figure


def plot_head_maps(maps: np.ndarray, image: Optional[np.ndarray] = None,
                   title: str = "Last layer: class-token attention per head") -> Figure:
    """One panel per head: [H, rows, columns] maps, over the image when one is given."""
    heads = len(maps)
    columns = min(heads, 6)
    rows = -(-heads // columns)
    figure = Figure(figsize=(2.0 * columns, 2.1 * rows + 0.4))
    for head, heatmap in enumerate(maps):
        axes = figure.add_subplot(rows, columns, head + 1)
        if image is not None:
            height, width = image.shape[:2]
            axes.imshow(image, interpolation="nearest")
            axes.imshow(upsample(heatmap, height, width), cmap="inferno", alpha=0.6,
                        interpolation="nearest")
        else:
            axes.imshow(heatmap, cmap="inferno", interpolation="nearest")
        axes.set_title(f"head {head + 1}", fontsize=8)
        axes.set_xticks([])
        axes.set_yticks([])
    figure.suptitle(title, fontsize=10)
    return figure


def plot_attention_distance(distances: np.ndarray, image_size: Sequence[int],
                            title: str = "Mean attention distance") -> Figure:
    """Figure 7 (right): one dot per head at each depth, distance in pixels."""
    layers, heads = distances.shape
    figure = Figure(figsize=(6.0, 4.2))
    axes = figure.add_subplot()
    for head in range(heads):
        axes.scatter(np.arange(1, layers + 1), distances[:, head], s=18, alpha=0.8,
                     label=f"head {head + 1}" if heads <= 12 else None)
    axes.set_xlabel("network depth (layer)")
    axes.set_ylabel("mean attention distance (pixels)")
    axes.set_ylim(0, max(float(np.hypot(*image_size[:2])) / 2, float(distances.max()) * 1.1))
    axes.set_xticks(range(1, layers + 1))
    axes.set_title(title)
    axes.grid(alpha=0.3)
    if heads <= 12:
        axes.legend(fontsize=7, ncol=2)
    return figure


def plot_position_similarity(similarity: np.ndarray,
                             title: str = "Position embedding similarity") -> Figure:
    """Figure 7 (centre): for each patch position (one small grid each, laid out as the
    patches are), the cosine similarity of its embedding to every position's."""
    rows, columns = similarity.shape[:2]
    figure = Figure(figsize=(min(1.0 * columns + 1.5, 14.0), min(1.0 * rows + 0.8, 14.0)))
    image = None
    for i in range(rows):
        for j in range(columns):
            axes = figure.add_subplot(rows, columns, i * columns + j + 1)
            image = axes.imshow(similarity[i, j], cmap="viridis", vmin=-1, vmax=1,
                                interpolation="nearest")
            axes.set_xticks([])
            axes.set_yticks([])
            if j == 0:
                axes.set_ylabel(str(i + 1), rotation=0, fontsize=7, ha="right", va="center")
            if i == rows - 1:
                axes.set_xlabel(str(j + 1), fontsize=7)
    figure.subplots_adjust(right=0.86)
    figure.colorbar(image, cax=figure.add_axes([0.89, 0.15, 0.02, 0.7]),
                    label="cosine similarity")
    figure.suptitle(f"{title} (input patch row, column)", fontsize=10)
    return figure


def plot_filter_components(tiles: np.ndarray, shares: np.ndarray,
                           title: str = "Principal components of the patch-embedding filters"
                           ) -> Figure:
    """Figure 7 (left): the first components as RGB tiles, with the variance each explains."""
    count = len(tiles)
    columns = min(count, 7)
    rows = -(-count // columns)
    figure = Figure(figsize=(1.4 * columns, 1.55 * rows + 0.5))
    for index, (tile, share) in enumerate(zip(tiles, shares)):
        axes = figure.add_subplot(rows, columns, index + 1)
        axes.imshow(tile, interpolation="nearest")
        axes.set_title(f"{index + 1}: {share:.0%}", fontsize=7)
        axes.set_xticks([])
        axes.set_yticks([])
    figure.suptitle(title, fontsize=10)
    return figure
