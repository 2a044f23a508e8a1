"""Data sources: digits, folders, list files, paddle.vision archives, and bad data."""

import gzip
import io
import pickle
import struct
import tarfile

import numpy as np
import pytest

from conftest import ROOT, assert_one_line_error, make_messy_folder, run_tool, write_image
from vit.config import load_config
from vit.data import build_datasets
from vit.data.sources import count_classes
from vit.errors import ConfigError, DataError


def data_config(**data):
    return load_config(None, [f"data.{k}={v}" for k, v in data.items()]).data


def test_digits_split_is_stratified_seeded_and_complete():
    bundle = build_datasets(data_config())
    sizes = {name: len(split) for name, split in bundle.splits.items()}
    assert sizes == {"train": 1258, "val": 180, "test": 359}
    assert sum(sizes.values()) == 1797
    all_labels = np.concatenate([s.labels for s in bundle.splits.values()])
    assert np.bincount(all_labels).tolist() == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180]
    for split in bundle.splits.values():  # every class in every split, in proportion
        share = split.class_counts() / len(split)
        assert np.all(np.abs(share - 0.1) < 0.025)
    again = build_datasets(data_config())
    assert np.array_equal(again.splits["test"].positions, bundle.splits["test"].positions)
    other = build_datasets(data_config(split_seed=1))
    assert not np.array_equal(other.splits["test"].positions, bundle.splits["test"].positions)


def test_splits_do_not_overlap():
    bundle = build_datasets(data_config())
    sets = [set(s.positions.tolist()) for s in bundle.splits.values()]
    assert not (sets[0] & sets[1] or sets[0] & sets[2] or sets[1] & sets[2])


def test_train_fraction_takes_a_stratified_share():
    bundle = build_datasets(data_config(train_fraction=0.1))
    assert len(bundle.splits["train"]) == 126
    assert (bundle.splits["train"].class_counts() >= 12).all()
    assert len(bundle.splits["test"]) == 359  # evaluation splits stay the same


def test_messy_folder_skips_exactly_the_unusable_files(tmp_path):
    root, good, bad = make_messy_folder(tmp_path / "pets")
    bundle = build_datasets(data_config(source="folder", root=root, val_fraction=0.0,
                                        test_fraction=0.0))
    assert {item["path"] for item in bundle.skipped} == bad
    reasons = {item["path"]: item["reason"] for item in bundle.skipped}
    assert reasons[str(root / "cats" / "truncated.jpg")] == "truncated file"
    assert "not an image" in reasons[str(root / "dogs" / "notes.jpg")]
    assert bundle.class_names == ["cats", "dogs"] and bundle.empty_classes == ["birds"]
    train = bundle.splits["train"]
    assert set(train.items) == good
    for index in range(len(train)):
        image = np.asarray(train.load(index))
        assert image.ndim == 3 and image.shape[2] == 3 and image.dtype == np.uint8


def test_folder_with_split_subfolders(tmp_path):
    for split, count in (("train", 4), ("val", 2), ("test", 3)):
        for cls in ("a", "b"):
            for i in range(count):
                write_image(tmp_path / split / cls / f"{i}.png", color=(i, 0, 0))
    bundle = build_datasets(data_config(source="folder", root=tmp_path))
    assert {k: len(v) for k, v in bundle.splits.items()} == {"train": 8, "val": 4, "test": 6}


def test_the_folder_layout_knows_exactly_the_splits_of_the_registry():
    """file_sources.py cannot import `SPLITS` (sources.py imports it); its folder table agrees."""
    from vit.data.file_sources import SPLIT_FOLDERS
    from vit.data.sources import SPLITS

    assert tuple(SPLIT_FOLDERS) == SPLITS


def test_class_folders_that_differ_between_splits_are_refused(tmp_path):
    write_image(tmp_path / "train" / "a" / "0.png")
    write_image(tmp_path / "val" / "a" / "0.png")
    write_image(tmp_path / "val" / "zebra" / "0.png")
    with pytest.raises(DataError, match=r"class folder '.*val/zebra' has no counterpart in the train split"):
        build_datasets(data_config(source="folder", root=tmp_path))


def test_decompression_bomb_is_skipped(tmp_path):
    write_image(tmp_path / "a" / "small.png", size=(10, 10))
    write_image(tmp_path / "a" / "huge.png", size=(400, 400))
    write_image(tmp_path / "b" / "small.png", size=(10, 10))
    bundle = build_datasets(data_config(source="folder", root=tmp_path, max_image_pixels=10000,
                                        val_fraction=0.0, test_fraction=0.0))
    assert [item["path"] for item in bundle.skipped] == [str(tmp_path / "a" / "huge.png")]
    assert "decompression bomb" in bundle.skipped[0]["reason"]


def test_image_that_breaks_after_the_scan_is_dropped_from_its_batch_not_replaced(tmp_path):
    from vit.data.datasets import Skipped, collate_skipping

    write_image(tmp_path / "a" / "0.png")
    path = write_image(tmp_path / "b" / "0.png")
    bundle = build_datasets(data_config(source="folder", root=tmp_path, val_fraction=0.0,
                                        test_fraction=0.0))
    path.write_text("gone bad")
    train = bundle.splits["train"]
    samples = [train[i] for i in range(len(train))]
    assert sum(isinstance(s, Skipped) for s in samples) == 1
    batch = collate_skipping([(np.zeros((3, 2, 2)), 0, i) if not isinstance(s, Skipped) else s
                              for i, s in enumerate(samples)])
    assert len(batch["labels"]) == 1 and batch["skipped"][0][0] == str(path)


def write_list_dataset(root):
    for i in range(6):
        write_image(root / "img" / f"{i}.png", color=(i * 40, 0, 0))
    (root / "train.txt").write_text("img/0.png 0\nimg/1.png 1\nimg/2.png 0\nimg/3.png 1\n"
                                    "img/missing.png 1\n")
    (root / "val.txt").write_text("img/4.png 0\nimg/5.png 1\n")
    (root / "labels.txt").write_text("zero\none\n")


def test_list_files_with_label_names(tmp_path):
    write_list_dataset(tmp_path)
    bundle = build_datasets(data_config(source="list", root=tmp_path, train_list="train.txt",
                                        val_list="val.txt", label_names="labels.txt",
                                        test_fraction=0.0))
    assert bundle.class_names == ["zero", "one"]
    assert len(bundle.splits["train"]) == 4 and len(bundle.splits["val"]) == 2
    assert [s["path"] for s in bundle.skipped] == [str(tmp_path / "img" / "missing.png")]
    assert "train.txt:5 but missing" in bundle.skipped[0]["reason"]


def test_list_label_out_of_range_is_refused_with_file_and_line(tmp_path):
    write_list_dataset(tmp_path)
    (tmp_path / "val.txt").write_text("img/4.png 0\nimg/5.png 7\n")
    with pytest.raises(DataError, match=r"val.txt:2: label 7 is out of range for 2 classes"):
        build_datasets(data_config(source="list", root=tmp_path, train_list="train.txt",
                                   val_list="val.txt", label_names="labels.txt"))


def test_malformed_list_line_is_refused(tmp_path):
    write_list_dataset(tmp_path)
    (tmp_path / "train.txt").write_text("img/0.png zero\n")
    with pytest.raises(DataError, match=r"train.txt:1: expected 'relative/path.jpg label'"):
        build_datasets(data_config(source="list", root=tmp_path, train_list="train.txt"))


def test_missing_root_is_one_clear_error(tmp_path):
    with pytest.raises(DataError, match="data.root .* is not a folder"):
        build_datasets(data_config(source="folder", root=tmp_path / "nowhere"))


# --- paddle.vision archives, built here in their real formats ------------------------------
def cifar_archive(path, classes=10, per_split=20, seed=0):
    """A small cifar-10/100-python.tar.gz laid out as the real one."""
    rng = np.random.default_rng(seed)
    folder = "cifar-10-batches-py" if classes == 10 else "cifar-100-python"
    key = b"labels" if classes == 10 else b"fine_labels"
    members = {}
    names = (["data_batch_1", "data_batch_2"], ["test_batch"]) if classes == 10 else (["train"], ["test"])
    for split_names in names:
        for name in split_names:
            labels = [int(i % classes) for i in range(per_split)]
            members[name] = pickle.dumps({key: labels, b"data": rng.integers(0, 256, (per_split, 3072), dtype=np.uint8)})
    if classes == 100:
        members["meta"] = pickle.dumps({"fine_label_names": [f"class{i}" for i in range(100)]})
    with tarfile.open(path, "w:gz") as archive:
        for name, payload in members.items():
            info = tarfile.TarInfo(f"{folder}/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return path


def mnist_files(folder, count=100, seed=0):
    """The four gzipped IDX files of MNIST with `count` images each (a multiple of 100)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for split in ("train", "t10k"):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = (np.arange(count) % 10).astype(np.uint8)
        with gzip.open(folder / f"{split}-images-idx3-ubyte.gz", "wb") as handle:
            handle.write(struct.pack(">IIII", 2051, count, 28, 28) + images.tobytes())
        with gzip.open(folder / f"{split}-labels-idx1-ubyte.gz", "wb") as handle:
            handle.write(struct.pack(">II", 2049, count) + labels.tobytes())
    return folder


def test_cifar10_from_a_local_archive(tmp_path):
    archive = cifar_archive(tmp_path / "cifar-10-python.tar.gz")
    bundle = build_datasets(data_config(source="cifar10", archive=archive, val_fraction=0.25))
    assert bundle.class_names[0] == "airplane"
    assert {k: len(v) for k, v in bundle.splits.items()} == {"train": 30, "test": 20, "val": 10}
    assert np.asarray(bundle.splits["test"].load(0)).shape == (32, 32, 3)


def test_cifar100_reads_its_class_names_from_meta(tmp_path):
    archive = cifar_archive(tmp_path / "cifar-100-python.tar.gz", classes=100, per_split=200)
    bundle = build_datasets(data_config(source="cifar100", archive=archive, val_fraction=0.0))
    assert bundle.num_classes == 100 and bundle.class_names[7] == "class7"


@pytest.mark.parametrize("source", ["mnist", "fashion_mnist"])
def test_mnist_style_sources_from_a_local_folder(tmp_path, source):
    folder = mnist_files(tmp_path / source)
    bundle = build_datasets(data_config(source=source, archive=folder, val_fraction=0.1))
    assert len(bundle.splits["test"]) == 100 and len(bundle.splits["train"]) == 90
    assert np.asarray(bundle.splits["train"].load(0)).shape == (28, 28, 3)


def test_flowers102_from_local_files(tmp_path):
    from scipy.io import savemat

    folder = tmp_path / "flowers"
    jpgs = tmp_path / "jpg"
    for index in range(1, 7):
        write_image(jpgs / f"image_{index:05}.jpg", color=(index * 30, 0, 0))
    folder.mkdir()
    with tarfile.open(folder / "102flowers.tgz", "w:gz") as archive:
        archive.add(jpgs, arcname="jpg")
    savemat(folder / "imagelabels.mat", {"labels": np.array([[1, 2, 1, 2, 1, 2]])})
    savemat(folder / "setid.mat", {"tstid": np.array([[1, 2, 3, 4]]), "valid": np.array([[5]]),
                                   "trnid": np.array([[6]])})
    bundle = build_datasets(data_config(source="flowers102", archive=folder))
    assert {k: len(v) for k, v in bundle.splits.items()} == {"train": 4, "val": 1, "test": 1}
    assert bundle.splits["train"].labels.tolist() == [0, 1, 0, 1]


def test_corrupt_local_archive_is_one_clear_error(tmp_path):
    bad = tmp_path / "cifar-10-python.tar.gz"
    bad.write_bytes(b"not a tar file")
    with pytest.raises(DataError, match="cannot read .* as Cifar10 data"):
        build_datasets(data_config(source="cifar10", archive=bad))


def test_an_unknown_source_is_refused_with_the_closest_name():
    with pytest.raises(ConfigError, match="unknown data.source 'cifar'; did you mean 'cifar10'"):
        build_datasets(data_config(source="cifar"))
    result = run_tool("train", "--stats-only", "-o", "data.source=fashion-mnist")
    assert_one_line_error(result, "unknown data.source 'fashion-mnist'",
                          "did you mean 'fashion_mnist'?")


def test_every_registered_source_is_documented_and_listed_once():
    from vit.data import SOURCES, source_names

    assert source_names() == list(SOURCES) and len(set(source_names())) == len(SOURCES)
    datasets_page = (ROOT / "docs" / "datasets.md").read_text(encoding="utf-8")
    configs_page = (ROOT / "docs" / "configs.md").read_text(encoding="utf-8")
    for name, source in SOURCES.items():
        assert f"`{name}`" in datasets_page and f"`{name}`" in configs_page, name
        assert source.description, name


def test_each_source_counts_the_classes_its_data_set_has(tmp_path):
    """`count_classes` (what `vit-summary -c` sizes the head with) asks the source, which counts
    by the same rule as it builds: a folder holding only a hidden file is no class, and a list
    source takes the largest label over every list."""
    root, _, _ = make_messy_folder(tmp_path / "messy")
    (root / "hidden_only").mkdir()
    (root / "hidden_only" / ".DS_Store").write_bytes(b"\0")
    write_image(tmp_path / "list" / "a.png")
    (tmp_path / "list" / "train.txt").write_text("a.png 0\na.png 1\n")
    (tmp_path / "list" / "val.txt").write_text("a.png 4\n")
    archive = cifar_archive(tmp_path / "cifar-10-python.tar.gz")
    cases = {"digits": data_config(),
             "folder": data_config(source="folder", root=root),
             "list": data_config(source="list", root=tmp_path / "list", train_list="train.txt",
                                 val_list="val.txt"),
             "cifar10": data_config(source="cifar10", archive=archive)}
    counts = {name: (count_classes(config), build_datasets(config).num_classes)
              for name, config in cases.items()}
    assert counts == {"digits": (10, 10), "folder": (2, 2), "list": (5, 5),
                      "cifar10": (10, 10)}


def test_summary_of_a_config_sizes_the_head_from_the_data(tmp_path):
    root, _, _ = make_messy_folder(tmp_path / "messy")
    result = run_tool("summary", "-o", "data.source=folder", "-o", f"data.root={root}")
    assert result.returncode == 0, result.stderr
    head = [line for line in result.stdout.splitlines() if "Linear-" in line][-1]
    assert "[1, 2]" in head and head.split()[-1] == "130"  # 64 x 2 weights + 2 biases
    assert "Total params: 204,226" in result.stdout  # ViT_tiny_patch4_16 with a 2-class head
    assert_one_line_error(run_tool("summary", "-o", "data.source=folder", "-o",
                                   f"data.root={tmp_path / 'none'}"), "is not a folder")
