"""The `paddle.vision.datasets` sources: which files each needs, and reading them into ImageSets.

Each source lists the files Paddle's own class downloads, with Paddle's URLs and MD5 sums. They
come from `data.archive` (the archive itself, or a folder holding the files), or from the cache
folder `data.root`, or are downloaded there (from `data.url` when set, a mirror holding the same
file names) and verified before use. Paddle's dataset class then reads them.
"""

import logging
import pickle
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
from paddle.vision.datasets import MNIST, Cifar10, Cifar100, FashionMNIST, Flowers, cifar, flowers

from ..config import DataConfig
from ..errors import DataError
from .datasets import ArrayImageSet, DataBundle, FileImageSet, ImageSet
from ..download import fetch

log = logging.getLogger(__name__)

CIFAR10_CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse",
                   "ship", "truck"]
FASHION_CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
                   "Sneaker", "Bag", "Ankle boot"]


@dataclass(frozen=True)
class RemoteFile:
    name: str
    url: str
    md5: str


@dataclass(frozen=True)
class PaddleSource:
    """A `paddle.vision.datasets` data set: the files it needs and how to read them."""

    name: str
    description: str
    num_classes: int
    files: Tuple[RemoteFile, ...]
    read: Callable[[Dict[str, Path]], Tuple[Dict[str, ImageSet], List[str]]]

    def build(self, config: DataConfig, progress=None) -> DataBundle:
        """The DataBundle of this source, acquiring its files first (`data.archive`, the cache
        folder `data.root`, or a verified download)."""
        if config.archive and len(self.files) > 1 and not Path(config.archive).is_dir():
            raise DataError(f"data.source={self.name} needs {len(self.files)} files",
                            f"make data.archive a folder holding "
                            f"{', '.join(f.name for f in self.files)}")
        root = Path(config.root or Path("data") / self.name)
        files = prepare_files(self, root, config.archive, config.url, config.download,
                              progress=progress)
        splits, names = self.read(files)
        return DataBundle(self.name, names, splits)


def _remote(url: str, md5: str) -> RemoteFile:
    return RemoteFile(url.rsplit("/", 1)[-1], url, md5)


def _read_cifar(files, dataset_class, archive_key, class_names_of):
    """CIFAR through paddle.vision.datasets.Cifar10/Cifar100, into uint8 arrays."""
    path = str(files[archive_key])
    splits = {}
    for mode, split in (("train", "train"), ("test", "test")):
        dataset = _construct(dataset_class, path, data_file=path, mode=mode, download=False)
        pixels = np.stack([np.reshape(image, (3, 32, 32)) for image, _ in dataset.data])
        labels = np.asarray([label for _, label in dataset.data], dtype=np.int64)
        splits[split] = (pixels.transpose(0, 2, 3, 1).astype(np.uint8), labels)
    names = class_names_of(path)
    return {split: ArrayImageSet(pixels, labels, names, name=f"{archive_key}/{split}")
            for split, (pixels, labels) in splits.items()}, names


def _cifar100_names(path: str) -> List[str]:
    """The 100 fine label names, from the archive's `meta` file (plain strings, no objects)."""
    with tarfile.open(path) as archive:
        member = next((m for m in archive.getmembers() if m.name.endswith("/meta")), None)
        if member is None:
            return [str(i) for i in range(100)]
        meta = _PlainUnpickler(archive.extractfile(member), encoding="latin1").load()
    return [name.decode() if isinstance(name, bytes) else str(name)
            for name in meta.get("fine_label_names", meta.get(b"fine_label_names", []))]


class _PlainUnpickler(pickle.Unpickler):
    """Unpickles plain containers only: the meta file needs nothing else, and nothing in it
    gets to run code."""

    def find_class(self, module, name):
        raise DataError(f"the CIFAR-100 meta file asks for {module}.{name}",
                        "use the official archive")


def _read_mnist(files, dataset_class, class_names):
    splits = {}
    for mode in ("train", "test"):
        images = files[f"{'train' if mode == 'train' else 't10k'}-images-idx3-ubyte.gz"]
        labels = files[f"{'train' if mode == 'train' else 't10k'}-labels-idx1-ubyte.gz"]
        dataset = _construct(dataset_class, str(images), image_path=str(images),
                             label_path=str(labels), mode=mode, download=False)
        side = int(np.sqrt(len(dataset.images[0])))
        pixels = np.stack(dataset.images).reshape(-1, side, side).astype(np.uint8)
        targets = np.concatenate(dataset.labels).astype(np.int64)
        splits[mode] = ArrayImageSet(pixels, targets, class_names, name=f"{dataset_class.NAME}/{mode}")
    return splits, class_names


def _read_flowers(files):
    names = [f"flower_{i:03d}" for i in range(1, 103)]
    splits = {}
    for mode, split in (("train", "train"), ("valid", "val"), ("test", "test")):
        dataset = _construct(Flowers, str(files["102flowers.tgz"]),
                             data_file=str(files["102flowers.tgz"]),
                             label_file=str(files["imagelabels.mat"]),
                             setid_file=str(files["setid.mat"]), mode=mode, download=False)
        paths = [Path(dataset.data_path) / "jpg" / f"image_{index:05}.jpg"
                 for index in dataset.indexes]
        labels = np.asarray([dataset.labels[index - 1] - 1 for index in dataset.indexes])
        splits[split] = FileImageSet(paths, labels, names)
    return splits, names


def _construct(dataset_class, path, **kwargs):
    """Build a paddle.vision dataset, turning a corrupt archive into one line."""
    try:
        return dataset_class(backend="pil", **kwargs)
    except Exception as error:  # Paddle raises tarfile, gzip, pickle, struct and OS errors
        raise DataError(f"cannot read {path} as {dataset_class.__name__} data "
                        f"({type(error).__name__}: {error})",
                        "give the archive that paddle.vision.datasets downloads") from None


def _mnist_files(cls) -> Tuple[RemoteFile, ...]:
    return tuple(_remote(getattr(cls, f"{split}_{kind}_URL"), getattr(cls, f"{split}_{kind}_MD5"))
                 for split in ("TRAIN", "TEST") for kind in ("IMAGE", "LABEL"))


PADDLE_SOURCES: Tuple[PaddleSource, ...] = (
    PaddleSource("cifar10", "CIFAR-10: 60,000 32x32 photos of 10 classes (paddle.vision)", 10,
                 (_remote(cifar.CIFAR10_URL, cifar.CIFAR10_MD5),),
                 lambda f: _read_cifar(f, Cifar10, "cifar-10-python.tar.gz",
                                       lambda _: CIFAR10_CLASSES)),
    PaddleSource("cifar100", "CIFAR-100: 60,000 32x32 photos of 100 classes (paddle.vision)",
                 100, (_remote(cifar.CIFAR100_URL, cifar.CIFAR100_MD5),),
                 lambda f: _read_cifar(f, Cifar100, "cifar-100-python.tar.gz", _cifar100_names)),
    PaddleSource("mnist", "MNIST: 70,000 28x28 handwritten digits (paddle.vision)", 10,
                 _mnist_files(MNIST),
                 lambda f: _read_mnist(f, MNIST, [str(i) for i in range(10)])),
    PaddleSource("fashion_mnist", "Fashion-MNIST: 70,000 28x28 clothing images "
                 "(paddle.vision)", 10, _mnist_files(FashionMNIST),
                 lambda f: _read_mnist(f, FashionMNIST, FASHION_CLASSES)),
    PaddleSource("flowers102", "Oxford Flowers-102: 8,189 photos of 102 flowers "
                 "(paddle.vision)", 102,
                 (_remote(flowers.DATA_URL, flowers.DATA_MD5),
                  _remote(flowers.LABEL_URL, flowers.LABEL_MD5),
                  _remote(flowers.SETID_URL, flowers.SETID_MD5)), _read_flowers),
)


def prepare_files(source: PaddleSource, root: Path, archive: Optional[str] = None,
                  url: Optional[str] = None, download: bool = True,
                  progress=None) -> Dict[str, Path]:
    """Find or download every file of `source`; return file name -> verified local path.

    Args:
        source: one of `PADDLE_SOURCES`.
        root: cache folder for downloads.
        archive: a local copy, used as given: the file itself (one-file sources) or a folder
            holding the files under their official names.
        url: base URL of a mirror holding the files under their official names.
        download: fetch files that are missing from `root`.
        progress: called as progress(stage, bytes_done, bytes_total).
    """
    files = {}
    for remote in source.files:
        local = _local_copy(remote, archive)
        if local is not None:
            files[remote.name] = local
            continue
        source_url = f"{url.rstrip('/')}/{remote.name}" if url else remote.url
        files[remote.name] = fetch(source_url, root / remote.name, remote.md5, download,
                                   _bytes_progress(progress, remote.name))
    return files


def _bytes_progress(progress, name: str):
    """progress(stage, done, total) as the (bytes, total or None) callback a download takes."""
    if progress is None:
        return None
    return lambda done, total: progress(f"downloading {name}", done, total or 0)


def _local_copy(remote: RemoteFile, archive: Optional[str]) -> Optional[Path]:
    if not archive:
        return None
    path = Path(archive)
    if path.is_dir():
        candidate = path / remote.name
        if not candidate.is_file():
            raise DataError(f"data.archive folder '{path}' has no {remote.name}",
                            "put the files that paddle.vision.datasets downloads there")
        return candidate
    if not path.is_file():
        raise DataError(f"data.archive '{path}' does not exist", "check the path")
    return path
