"""Generated pre-training images: FractalDB-style fractal classes (Kataoka et al., ACCV 2020).

A class is a random iterated function system (IFS): 2 to 4 affine maps x -> A x + b of the plane,
map k chosen with probability proportional to |det A_k|. An image is the attractor drawn by the
chaos game (start anywhere, apply a randomly chosen map again and again, plot the points),
scaled to fill the frame. So the data set grows on a dial: as many classes and instances as
asked, reproducible from a seed, no download.

- Classes: the parameters are uniform in [-1, 1]; a map whose largest singular value exceeds
  `MAX_CONTRACTION` is drawn again (a non-contracting map has no bounded attractor), and a
  system whose attractor fills less than `MIN_FILL` of its frame is drawn again (FractalDB's
  filling-rate filter: lines and dots are no categories).
- Instances: every parameter of the class's system is multiplied by 1 + N(0, `JITTER`) (kept
  contracting), then a random horizontal and vertical flip and a random colour of full
  saturation on black.

The chaos game runs for all images of a chunk at once (one NumPy step per point, over the
chunk), and the points become pixels with one `bincount`; the data set is rendered once and
cached as an `.npz` under `data/fractals/` (written atomically).
"""

import logging
from pathlib import Path

import numpy as np

from ..config import DataConfig
from ..errors import DataError
from ..files import atomic_path
from ..progress import Progress
from .datasets import ArrayImageSet, DataBundle

log = logging.getLogger(__name__)

MAPS = (2, 4)  # fewest and most affine maps of a system
MAX_CONTRACTION = 0.95  # largest singular value of any map, of a class and of an instance
MIN_FILL = 0.08  # share of the frame's pixels a class's attractor must cover
JITTER = 0.05  # instance variation: relative noise on every parameter
BURN_IN = 16  # chaos-game steps before the points are on the attractor
CHUNK_POINTS = 20_000_000  # points held in memory at once (two float32 coordinates each)
RENDER_VERSION = 1  # part of the cache's name: a change of the renderer renders again


def points_per_image(size: int) -> int:
    """Chaos-game points per image: four per pixel, so a class's shape is drawn in full."""
    return 4 * size * size


def _largest_singular_value(maps: np.ndarray) -> np.ndarray:
    """sigma_max of 2x2 matrices [..., 4] (a, b, c, d row-major), in closed form."""
    a, b, c, d = np.moveaxis(maps, -1, 0)
    squares = a * a + b * b + c * c + d * d
    det = a * d - b * c
    return np.sqrt((squares + np.sqrt(np.maximum(squares ** 2 - 4 * det ** 2, 0))) / 2)


def _contract(linear: np.ndarray) -> np.ndarray:
    """Scale the maps whose sigma_max exceeds MAX_CONTRACTION down to it."""
    sigma = _largest_singular_value(linear)[..., None]
    return np.where(sigma > MAX_CONTRACTION, linear * (MAX_CONTRACTION / np.maximum(sigma, 1e-12)),
                    linear)


def map_probabilities(linear: np.ndarray, used: np.ndarray) -> np.ndarray:
    """Choice probabilities [..., 4] of the maps: |det| (at least 1 % of the largest, so every
    map is drawn sometimes), 0 for the padding of systems with fewer than four maps."""
    det = np.abs(linear[..., 0] * linear[..., 3] - linear[..., 1] * linear[..., 2])
    det = np.where(used, np.maximum(det, 0.01 * det.max(-1, keepdims=True) + 1e-6), 0.0)
    return det / det.sum(-1, keepdims=True)


def render(linear: np.ndarray, shift: np.ndarray, probabilities: np.ndarray, size: int,
           rng: np.random.Generator) -> np.ndarray:
    """Attractor density images [N, size, size] in [0, 1] of N systems.

    Args:
        linear: [N, 4, 4] the maps' matrices (a, b, c, d row-major), padded to four maps.
        shift: [N, 4, 2] the maps' translations.
        probabilities: [N, 4] the maps' choice probabilities (0 for padding).
    """
    count, steps = len(linear), points_per_image(size)
    coefficients = np.concatenate([linear, shift], -1).reshape(count * 4, 6).astype(np.float32)
    cumulative = np.cumsum(probabilities, -1).astype(np.float32)
    cumulative[:, -1] = 1.0  # rounding never selects a padding map
    offsets = (np.arange(count) * 4)[:, None]
    x = np.zeros(count, np.float32)
    y = np.zeros(count, np.float32)
    xs = np.empty((steps, count), np.float32)
    ys = np.empty((steps, count), np.float32)
    block = 256  # random choices drawn for this many steps at a time
    for start in range(0, BURN_IN + steps, block):
        length = min(block, BURN_IN + steps - start)
        uniform = rng.random((length, count), dtype=np.float32)
        chosen = (uniform[..., None] > cumulative[None]).sum(-1) + offsets.T  # [length, N]
        for row in range(length):
            c = coefficients[chosen[row]]
            x, y = c[:, 0] * x + c[:, 1] * y + c[:, 4], c[:, 2] * x + c[:, 3] * y + c[:, 5]
            step = start + row - BURN_IN
            if step >= 0:
                xs[step], ys[step] = x, y
    return _rasterise(xs, ys, size)


def _rasterise(xs: np.ndarray, ys: np.ndarray, size: int) -> np.ndarray:
    """Points [steps, N] -> log-density images [N, size, size] in [0, 1], each attractor
    centred and scaled to fill the frame (aspect kept)."""
    low_x, high_x = xs.min(0), xs.max(0)
    low_y, high_y = ys.min(0), ys.max(0)
    scale = (size - 1e-3) / np.maximum(np.maximum(high_x - low_x, high_y - low_y), 1e-6)
    column = ((xs - (low_x + high_x) / 2) * scale + size / 2).astype(np.int64).clip(0, size - 1)
    row = ((ys - (low_y + high_y) / 2) * scale + size / 2).astype(np.int64).clip(0, size - 1)
    count = xs.shape[1]
    flat = (np.arange(count) * size * size)[None] + row * size + column
    density = np.bincount(flat.ravel(), minlength=count * size * size).reshape(count, size, size)
    density = np.log1p(density.astype(np.float32))
    return density / np.maximum(density.max((1, 2), keepdims=True), 1e-6)


def sample_classes(classes: int, size: int, rng: np.random.Generator):
    """`classes` systems that pass both filters: (linear [C, 4, 4], shift [C, 4, 2], used
    [C, 4] bool)."""
    kept_linear, kept_shift, kept_used = [], [], []
    while sum(map(len, kept_linear)) < classes:
        batch = 2 * classes
        maps = rng.integers(MAPS[0], MAPS[1] + 1, batch)
        used = np.arange(4)[None] < maps[:, None]
        linear = rng.uniform(-1, 1, (batch, 4, 4))
        shift = rng.uniform(-1, 1, (batch, 4, 2))
        contracting = ((_largest_singular_value(linear) <= MAX_CONTRACTION) | ~used).all(-1)
        linear, shift, used = linear[contracting], shift[contracting], used[contracting]
        if len(linear):
            filled = (render(linear, shift, map_probabilities(linear, used), size, rng)
                      > 0).mean((1, 2))
            keep = filled >= MIN_FILL
            kept_linear.append(linear[keep])
            kept_shift.append(shift[keep])
            kept_used.append(used[keep])
    return (np.concatenate(kept_linear)[:classes], np.concatenate(kept_shift)[:classes],
            np.concatenate(kept_used)[:classes])


def _hue_colours(hues: np.ndarray) -> np.ndarray:
    """RGB [N, 3] in [0, 1] of full-saturation, full-value hues in [0, 1)."""
    return np.clip(np.abs((hues[:, None] * 6 + np.array([0, 4, 2])) % 6 - 3) - 1, 0, 1)


def render_fractals(classes: int, per_class: int, size: int, seed: int,
                    progress: Progress = None):
    """The images [classes * per_class, size, size, 3] uint8 and labels, class-major.

    Deterministic for (classes, per_class, size, seed)."""
    rng = np.random.default_rng(seed)
    linear, shift, used = sample_classes(classes, size, rng)
    labels = np.repeat(np.arange(classes), per_class)
    total = len(labels)
    images = np.empty((total, size, size, 3), np.uint8)
    chunk = max(1, CHUNK_POINTS // points_per_image(size))
    for start in range(0, total, chunk):
        if progress:
            progress("rendering fractals", start, total)
        label = labels[start:start + chunk]
        count = len(label)
        jittered = _contract(linear[label] * (1 + JITTER * rng.standard_normal((count, 4, 4))))
        moved = shift[label] * (1 + JITTER * rng.standard_normal((count, 4, 2)))
        density = render(jittered, moved, map_probabilities(jittered, used[label]), size, rng)
        flips = rng.random((count, 2)) < 0.5
        density = np.where(flips[:, 0, None, None], density[:, :, ::-1], density)
        density = np.where(flips[:, 1, None, None], density[:, ::-1, :], density)
        colours = _hue_colours(rng.random(count))
        images[start:start + count] = np.round(
            density[..., None] * colours[:, None, None, :] * 255).astype(np.uint8)
    if progress:
        progress("rendering fractals", total, total)
    return images, labels


def class_names(classes: int):
    return [f"fractal_{i:0{len(str(classes - 1))}d}" for i in range(classes)]


def cache_file(config: DataConfig) -> Path:
    root = Path(config.root or Path("data") / "fractals")
    return root / (f"fractals_c{config.fractal_classes}_n{config.fractal_per_class}"
                   f"_{config.fractal_size}px_seed{config.fractal_seed}_v{RENDER_VERSION}.npz")


def fractal_source(config: DataConfig, progress: Progress = None) -> DataBundle:
    """The `fractals` source: rendered once for its keys, then read from the cache."""
    path = cache_file(config)
    images = labels = None
    if path.is_file():
        try:
            with np.load(path) as cached:
                images, labels = cached["images"], cached["labels"]
        except Exception as error:  # a cache from elsewhere that cannot be read: render again
            log.warning("the fractal cache %s cannot be read (%s); rendering it again", path,
                        error)
    if images is None:
        images, labels = render_fractals(config.fractal_classes, config.fractal_per_class,
                                         config.fractal_size, config.fractal_seed, progress)
        try:
            with atomic_path(path) as temporary:
                with open(temporary, "wb") as handle:
                    np.savez(handle, images=images, labels=labels)
        except OSError as error:
            raise DataError(f"cannot write the fractal cache {path} ({error.strerror})",
                            "set data.root to a writable folder") from None
        log.info("rendered %d fractal images (%d classes) into %s", len(images),
                 config.fractal_classes, path)
    names = class_names(config.fractal_classes)
    return DataBundle("fractals", names,
                      {"train": ArrayImageSet(images, labels, names, name="fractals")})


def fractal_class_count(config: DataConfig) -> int:
    return config.fractal_classes
