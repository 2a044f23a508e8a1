"""Embeddings and search: a model's embedding of every image of a split or a folder, kept as an
index beside the weights, and the images nearest to a query by cosine similarity.

The embedding is the probe's feature (finetune.feature_set): the class token after the final
norm, or, with `block`, the class token of that block (`VisionTransformer.forward_intermediates`:
raw, or through the final norm with `norm`). An index is three files in `<weights>.embeddings/`
(beside a checkpoint's `.pdparams`, or the cached published weights): `<key>.npy` (float32
[N, D], unit length), `<key>.csv` (path, label and position in the split or folder per row,
in the same order) and `<key>.json`
(what made it: the weights' SHA-256, the model, the embedding, the images). It is reused while
they match and rebuilt when the weights change.
"""

import csv
import hashlib
import io
import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from ..data.datasets import ImageSet
from ..data.images import UnusableImage, load_image
from ..errors import CheckpointError, DataError, VitError, param
from ..files import atomic_path, file_digest, write_text_atomic
from ..progress import Progress
from .finetune import feature_set
from .inference import collect_image_paths, unlabelled_images

log = logging.getLogger(__name__)

INDEX_FORMAT = "vit-paddle-embeddings/1"


@dataclass
class EmbeddingIndex:
    """Unit-length embeddings [N, D] of N images, what each image is and what made them."""

    vectors: np.ndarray
    names: List[str]  # a path, or source[index] for images held in memory
    labels: List[str]  # class name, the label names separated by spaces, or "" (unlabelled)
    positions: List[int]  # each image's position in the split or folder listing indexed
    record: dict

    def nearest(self, queries: np.ndarray, k: int):
        """(positions [M, k], cosine similarities [M, k]) of the k nearest images to each of
        the M query embeddings, nearest first."""
        similarity = unit(queries) @ self.vectors.T
        k = min(k, len(self.names))
        order = np.argsort(-similarity, axis=1, kind="stable")[:, :k]
        return order, np.take_along_axis(similarity, order, axis=1)


def unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1 (float32), so that cosine similarity is a dot product."""
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def embedding_of(loaded, block: Optional[int] = None, norm: bool = False) -> dict:
    """What an index records of the embedding, checked against the model: the class token
    after the final norm (`block` None), or that of block `block`.

    Raises:
        VitError: a block the model does not have, or a model without blocks.
    """
    if block is None:
        return {"block": None, "norm": True}
    if not hasattr(loaded.model, "forward_intermediates"):
        raise VitError(f"{loaded.record.name} has no Transformer blocks to take tokens from",
                       f"leave out {param('block')}")
    try:
        index = loaded.model.block_indices([block])[0]
    except IndexError as error:
        raise VitError(f"{param('block', block)}: {error}", "count blocks from 0") from None
    return {"block": index, "norm": bool(norm)}


def _forward(loaded, embedding: dict):
    if embedding["block"] is None:
        return None  # feature_set's own: forward_features
    return lambda images: loaded.model.forward_intermediates(
        images, [embedding["block"]], embedding["norm"])[0].class_token


def embed(loaded, dataset: ImageSet, embedding: dict, batch_size: int = 128,
          progress: Progress = None, stage: str = "embedding"):
    """(unit embeddings [N, D], the dataset positions of the N readable images)."""
    features = feature_set(loaded.model, dataset.with_transform(
        loaded.preprocessing.eval_transform()), batch_size, progress, stage,
        forward=_forward(loaded, embedding))
    return unit(features.features), features.positions


def weights_digest(weights: Path) -> str:
    """The SHA-256 of the weights: the one a checkpoint's JSON records, else the file's."""
    meta = Path(weights).with_suffix(".json")
    if meta.is_file():
        recorded = json.loads(meta.read_text(encoding="utf-8")).get("files", {})
        if recorded.get("pdparams", {}).get("sha256"):
            return recorded["pdparams"]["sha256"]
    return file_digest(weights)


def index_folder(weights: Path) -> Path:
    return Path(weights).parent / f"{Path(weights).stem}.embeddings"


def index_for(loaded, images: Optional[Path] = None, split: str = "train",
              block: Optional[int] = None, norm: bool = False, batch_size: int = 128,
              progress: Progress = None) -> EmbeddingIndex:
    """The index of a folder of images (`images`; a label is the image's class folder, when
    it is in one), or else of `split` of the model's config's data set: read from beside the
    weights while it matches, else built (with `progress`) and saved there."""
    embedding = embedding_of(loaded, block, norm)
    dataset, described = (_folder(loaded, Path(images)) if images is not None
                          else _split(loaded, split, progress))
    record = {"format": INDEX_FORMAT, "weights_sha256": weights_digest(loaded.weights),
              "model": loaded.record.name, "embedding": embedding, "images": described}
    key = _key(described, embedding)
    folder = index_folder(loaded.weights)
    saved = read_index(folder / f"{key}.json", quiet=True)
    if saved is not None and saved.record == record:
        return saved
    if saved is not None:
        log.info("rebuilding the index %s: the weights or the images changed", key)
    vectors, positions = embed(loaded, dataset, embedding, batch_size, progress,
                               f"embedding {described.get('split') or 'the images'}")
    index = EmbeddingIndex(vectors, [dataset.describe(int(p)) for p in positions],
                           [_label_text(dataset, int(p), images) for p in positions],
                           [int(p) for p in positions], record)
    write_index(folder / f"{key}.json", index)
    log.info("index of %d images saved in %s", len(index.names), folder / f"{key}.npy")
    return index


def _split(loaded, split: str, progress: Progress):
    from ..data.sources import build_datasets

    dataset = build_datasets(loaded.config.data, progress).splits[split]
    names = "\n".join(dataset.describe(i) for i in range(len(dataset)))
    return dataset, {"split": split, "source": loaded.config.data.source, "files": len(dataset),
                     "listing": hashlib.sha256(names.encode()).hexdigest()}


def _folder(loaded, folder: Path):
    files = collect_image_paths([folder])
    dataset = unlabelled_images(loaded, files)
    listing = hashlib.sha256("\n".join(map(str, files)).encode()).hexdigest()
    return dataset, {"folder": str(folder.resolve()), "files": len(files), "listing": listing}


def _label_text(dataset: ImageSet, position: int, folder: Optional[Path]) -> str:
    if folder is not None:  # an image's class folder, if it is in one
        relative = Path(dataset.items[position]).relative_to(folder)
        return relative.parts[0] if len(relative.parts) > 1 else ""
    label = dataset.labels[position]
    if dataset.multilabel:
        return " ".join(name for name, on in zip(dataset.class_names, label) if on)
    return dataset.class_names[int(label)]


def _key(described: dict, embedding: dict) -> str:
    if "folder" in described:
        name = f"folder-{hashlib.sha256(described['folder'].encode()).hexdigest()[:12]}"
    else:
        name = f"{described['source']}-{described['split']}"
    if embedding["block"] is not None:
        name += f"-block{embedding['block']}" + ("-norm" if embedding["norm"] else "")
    return name


def write_index(path: Path, index: EmbeddingIndex):
    """The three files of an index (`path` is its .json, written last)."""
    with atomic_path(path.with_suffix(".npy")) as temporary, open(temporary, "wb") as handle:
        np.save(handle, index.vectors)
    table = io.StringIO()
    csv.writer(table).writerows([("path", "label", "position"),
                                 *zip(index.names, index.labels, index.positions)])
    write_text_atomic(path.with_suffix(".csv"), table.getvalue())
    write_text_atomic(path, json.dumps({**index.record, "count": len(index.names)}, indent=1))


def read_index(path: Path, quiet: bool = False) -> Optional[EmbeddingIndex]:
    """The index whose .json is `path`; None when it is missing or (with `quiet`) unusable.

    Raises:
        CheckpointError: a damaged or incomplete index, naming the file (unless `quiet`).
    """
    try:
        record = json.loads(Path(path).read_text(encoding="utf-8"))
        count = record.pop("count")
        vectors = np.load(Path(path).with_suffix(".npy"))
        with open(Path(path).with_suffix(".csv"), newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))[1:]
        if record.get("format") != INDEX_FORMAT or len(vectors) != count or len(rows) != count \
                or any(len(row) != 3 for row in rows):
            raise ValueError("its files do not match")
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, OSError) as error:
        if quiet:
            return None
        raise CheckpointError(f"{path} is not a usable embedding index ({error})",
                              "delete it; tools/embed.py builds a new one") from None
    return EmbeddingIndex(vectors, [r[0] for r in rows], [r[1] for r in rows],
                          [int(r[2]) for r in rows], record)


def check_index_fits(index: EmbeddingIndex, loaded, source: str):
    """Refuse an index that other weights or another model made."""
    mine = {"model": loaded.record.name, "weights_sha256": weights_digest(loaded.weights)}
    theirs = {key: index.record.get(key) for key in mine}
    if theirs != mine:
        raise CheckpointError(f"{source} was built by another model ({theirs['model']}, "
                              f"weights {str(theirs['weights_sha256'])[:12]}) than "
                              f"{loaded.weights} ({mine['model']}, {mine['weights_sha256'][:12]})",
                              f"leave out {param('index')} to build one for these weights")


def similar_images(loaded, index: EmbeddingIndex, paths: Sequence, k: int = 5,
                   batch_size: int = 64) -> List[dict]:
    """The k images of `index` nearest to each image of `paths` (files, or folders searched
    recursively): per query `query` and `nearest`, a list of `row` (in the index), `name`,
    `label` and `similarity`.

    Raises:
        DataError: a query that is not a readable image, naming it.
    """
    files = readable_queries(paths, loaded.config.data.max_image_pixels)
    vectors, positions = embed(loaded, unlabelled_images(loaded, files), index.record["embedding"], batch_size)
    order, similarity = index.nearest(vectors, k)
    return [{"query": str(files[int(p)]),
             "nearest": [{"row": int(i), "name": index.names[i], "label": index.labels[i],
                          "similarity": float(s)} for i, s in zip(row, scores)]}
            for p, row, scores in zip(positions, order, similarity)]


def readable_queries(paths: Sequence, max_pixels: int) -> List[Path]:
    """The image files of `paths` (folders searched recursively), each checked to decode.

    Raises:
        DataError: a query that is not a readable image, naming it.
    """
    files = collect_image_paths(paths)
    for path in files:
        try:
            load_image(path, max_pixels)
        except UnusableImage as error:
            raise DataError(f"the query {path} is not an image that can be read "
                            f"({error.reason})", "give image files (.jpg, .png, ...) to search "
                            "with") from None
    return files


def knn_accuracy(index: EmbeddingIndex, queries: EmbeddingIndex, k: int = 1) -> float:
    """The share of `queries` whose label is the commonest among their k nearest images of
    `index` (a tie goes to the label met first, the nearer)."""
    if not len(queries.names):
        return 0.0
    order, _ = index.nearest(queries.vectors, k)
    hits = 0
    for row, truth in zip(order, queries.labels):
        votes = [index.labels[i] for i in row]
        hits += max(votes, key=lambda label: (votes.count(label), -votes.index(label))) == truth
    return hits / len(queries.names)


def indexed_images(loaded, index: EmbeddingIndex, chosen: Sequence[int]) -> list:
    """The RGB images (PIL) at `chosen` rows of `index`, read from its folder or split."""
    described = index.record["images"]
    if "folder" in described:
        return [load_image(index.names[i], loaded.config.data.max_image_pixels) for i in chosen]
    from ..data.sources import build_datasets

    split = build_datasets(loaded.config.data).splits[described["split"]]
    return [split.load(index.positions[i]) for i in chosen]
