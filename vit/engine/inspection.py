"""Looking inside a trained ViT: the paper's Figure 6 (attention rollout) and Figure 7 (patch
filter components, position-embedding similarity, mean attention distance) for a checkpoint and
images, as PNGs plus the numbers as JSON (`tools/visualize.py`, the web app)."""

import json
import logging
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np
import paddle

from ..analysis.attention import (attention_rollout, class_token_map, mean_attention_distance,
                                  record_attention)
from ..analysis.embeddings import as_rgb_tiles, filter_components, position_similarity
from ..data.images import UnusableImage, load_image
from ..data.loaders import build_loader
from ..data.sources import build_datasets
from ..data.transforms import denormalize
from ..errors import DataError, VitError, param
from ..progress import Progress
from ..viz import save_figure
from ..viz.attention_figures import (plot_attention_distance, plot_filter_components,
                                     plot_head_maps, plot_position_similarity, plot_rollout)
from .inference import LoadedModel, top_classes
from .scores import output_probabilities

log = logging.getLogger(__name__)


def explain_image(loaded: LoadedModel, image_path, head_fusion: str = "mean",
                  discard_ratio: float = 0.0) -> Dict[str, object]:
    """One image through the model with its attention recorded.

    Returns:
        dict with `image` (uint8 [H, W, 3], as the model saw it), `rollout` ([rows, columns],
        the class token's rollout, peak 1), `heads` ([H, rows, columns], the last layer's
        class-token attention per head), `maps` ([L, 1, H, N, N]) and `top` (class,
        probability) pairs, best first (multilabel: each label's own probability).
    """
    _require_vit(loaded)
    prep = loaded.preprocessing
    try:
        image = load_image(image_path, loaded.config.data.max_image_pixels)
    except UnusableImage as error:
        raise DataError(f"cannot explain {image_path}: {error.reason}",
                        "give a readable image file") from None
    pixels = prep.eval_transform()(image)  # [C, H, W] normalised
    with record_attention(loaded.model) as recorder, paddle.no_grad():
        logits = loaded.model(paddle.to_tensor(pixels[None])).numpy()
    maps = recorder.stacked()
    grid = loaded.model.grid_size
    return {"image": denormalize(pixels, prep.mean, prep.std),
            "rollout": class_token_map(attention_rollout(maps, head_fusion, discard_ratio),
                                       grid)[0],
            "heads": class_token_map(maps[-1, 0], grid), "maps": maps,
            "top": top_classes(output_probabilities(logits, prep.multilabel)[0],
                               prep.class_names)}


def attention_distances(loaded: LoadedModel, distance_images, batch_size: int = 32,
                        progress: Progress = None) -> np.ndarray:
    """Mean attention distance [L, H] in pixels over every image of `distance_images` (an
    ImageSet with the evaluation transform)."""
    _require_vit(loaded)
    grid, patch = loaded.model.grid_size, loaded.model.patch_embed.patch_size
    total, count = None, 0
    loader = build_loader(distance_images, batch_size, False)
    for done, batch in enumerate(loader, start=1):
        if not batch["images"].shape[0]:
            continue
        with record_attention(loaded.model) as recorder, paddle.no_grad():
            loaded.model(batch["images"])
        size = batch["images"].shape[0]
        distance = mean_attention_distance(recorder.stacked(), grid, patch) * size
        total = distance if total is None else total + distance
        count += size
        if progress:
            progress("attention distances", done, len(loader))
    if not count:
        raise VitError("no readable images to measure attention distances on",
                       f"give {param('distance_images')} readable images")
    return total / count


def sample_split(loaded: LoadedModel, split: str = "test", count: int = 64, seed: int = 0):
    """Up to `count` images of the checkpoint's own data set split (a seeded sample), with
    the evaluation transform."""
    data = build_datasets(loaded.config.data)
    dataset = data.splits[split]
    chosen = np.sort(np.random.default_rng(seed).permutation(len(dataset))[:count])
    return dataset.subset(chosen).with_transform(loaded.preprocessing.eval_transform())


def inspect_model(loaded: LoadedModel, image_paths: Sequence, distance_images, output_dir,
                  head_fusion: str = "mean", discard_ratio: float = 0.0, components: int = 28,
                  progress: Progress = None) -> Dict[str, object]:
    """Write every figure and `attention.json` into `output_dir`.

    Args:
        loaded: from `load_for_inference`.
        image_paths: images to explain, each getting a rollout and a per-head figure.
        distance_images: an ImageSet (evaluation transform) to average attention distances
            over.
        head_fusion, discard_ratio: rollout settings (`attention_rollout`).
        components: principal components of the patch filters to show.

    Returns:
        dict with `paths` (name -> file) and `numbers` (what attention.json holds).
    """
    _require_vit(loaded)
    output = Path(output_dir)
    paths: Dict[str, str] = {}
    numbers: Dict[str, object] = {"weights": str(loaded.weights), "head_fusion": head_fusion,
                                  "discard_ratio": discard_ratio}
    numbers["images"] = [_image_figures(loaded, index, path, head_fusion, discard_ratio, output,
                                        paths) for index, path in enumerate(image_paths)]
    distances = attention_distances(loaded, distance_images, progress=progress)
    size = loaded.preprocessing.image_size
    paths["attention_distance"] = str(save_figure(
        plot_attention_distance(distances, (size, size),
                                f"Mean attention distance over {len(distance_images)} images"),
        output / "attention_distance.png"))
    numbers.update(_embedding_figures(loaded, output, components, paths))
    numbers["mean_attention_distance_px"] = _rounded(distances)
    numbers["distance_images"] = len(distance_images)
    paths["json"] = str(output / "attention.json")
    (output / "attention.json").write_text(json.dumps(numbers) + "\n", encoding="utf-8")
    return {"paths": paths, "numbers": numbers}


def prediction_words(loaded: LoadedModel) -> str:
    """What a model's first output for an image is called: the predicted class, or for a
    model of several labels per image its likeliest label (others may be above threshold)."""
    return "likeliest label" if loaded.preprocessing.multilabel else "predicted"


def _image_figures(loaded: LoadedModel, index: int, path, head_fusion: str,
                   discard_ratio: float, output: Path, paths: Dict[str, str]) -> dict:
    """The rollout and per-head figures of image number `index` (added to `paths`); its
    numbers for attention.json."""
    explained = explain_image(loaded, path, head_fusion, discard_ratio)
    name, probability = explained["top"][0]
    stem = f"{index:02d}_{Path(path).stem}"
    paths[f"rollout_{stem}"] = str(save_figure(plot_rollout(
        explained["image"], explained["rollout"],
        caption=f"{Path(path).name}: {prediction_words(loaded)} {name} ({probability:.0%})"),
        output / f"rollout_{stem}.png"))
    paths[f"heads_{stem}"] = str(save_figure(plot_head_maps(
        explained["heads"], explained["image"]), output / f"heads_{stem}.png"))
    return {"path": str(path), "top": explained["top"], "rollout": _rounded(explained["rollout"]),
            "last_layer_heads": _rounded(explained["heads"])}


def _embedding_figures(loaded: LoadedModel, output: Path, components: int,
                       paths: Dict[str, str]) -> dict:
    model = loaded.model
    similarity = position_similarity(model.pos_embed.numpy(), model.grid_size)
    paths["position_similarity"] = str(save_figure(plot_position_similarity(similarity),
                                                   output / "position_similarity.png"))
    found, shares = filter_components(model.patch_embed.proj.weight.numpy(), components)
    paths["filter_components"] = str(save_figure(
        plot_filter_components(as_rgb_tiles(found), shares), output / "filter_components.png"))
    return {"position_similarity": _rounded(similarity),
            "filter_components": _rounded(found), "filter_variance_share": _rounded(shares)}


def has_attention(predictor) -> bool:
    """Whether `predictor` is a loaded Vision Transformer checkpoint, whose attention can be
    recorded (not a CNN baseline, not an exported static graph)."""
    return hasattr(getattr(predictor, "model", None), "blocks")


def _require_vit(loaded: LoadedModel):
    if not has_attention(loaded):
        raise VitError(f"{loaded.weights} holds a {type(loaded.model).__name__}, which has no "
                       "attention", "give a Vision Transformer checkpoint")


def _rounded(values) -> List:
    return np.round(np.asarray(values, dtype=np.float64), 5).tolist()
