"""Several labels per image (list vectors, CSV lists, digit mosaics) and imbalanced classes
(`data.cut_classes`, the report's imbalance line)."""

import numpy as np
import pytest

from conftest import write_image
from vit.config import load_config
from vit.data import build_datasets, collate_skipping, compute_dataset_stats, format_stats
from vit.data.datasets import stratified_indices, take_fraction
from vit.data.mosaics import MOSAICS_PER_DIGIT, digit_images, mosaic_splits
from vit.data.sources import count_classes
from vit.errors import ConfigError, DataError


def data_config(*overrides):
    return load_config(None, [f"data.{item}" for item in overrides]).data


def list_config(root, *overrides):
    return data_config("source=list", f"root={root}", "train_list=train.txt",
                       "test_fraction=0", "val_fraction=0", *overrides)


def write_images(root, count=4):
    for i in range(count):
        write_image(root / "img" / f"{i}.png", color=(i * 40, 0, 0))


def one_line_error(error_type, config) -> str:
    with pytest.raises(error_type) as caught:
        build_datasets(config)
    assert "\n" not in str(caught.value)
    return str(caught.value)


# --- PaddleClas multi-label list files ---------------------------------------------------------
def test_a_label_vector_list_reads_into_a_0_1_matrix(tmp_path):
    write_images(tmp_path)
    (tmp_path / "train.txt").write_text("img/0.png\t1,0,1\nimg/1.png\t0,1,0\n"
                                        "img/2.png\t1,1,1\nimg/3.png\t0,0,1\n")
    (tmp_path / "labels.txt").write_text("cat\ndog\nsky\n")
    config = list_config(tmp_path, "task=multilabel", "label_names=labels.txt")
    bundle = build_datasets(config)
    train = bundle.splits["train"]
    assert train.multilabel and bundle.class_names == ["cat", "dog", "sky"]
    assert train.labels.tolist() == [[1, 0, 1], [0, 1, 0], [1, 1, 1], [0, 0, 1]]
    assert train.class_counts().tolist() == [2, 2, 3] and count_classes(config) == 3
    unnamed = build_datasets(list_config(tmp_path, "task=multilabel"))
    assert unnamed.class_names == ["0", "1", "2"]
    batch = collate_skipping([train[i] for i in range(2)])
    assert batch["labels"].shape == (2, 3) and batch["labels"].dtype == np.int64


@pytest.mark.parametrize("lines, task, expected", [
    ("img/0.png\t1,0,1\nimg/1.png\t0,1\n", "multilabel",
     "train.txt:2: the label vector has 2 values, expected 3 (as in "),
    ("img/0.png\t1,0,2\n", "multilabel", "train.txt:1: label value '2' is not 0 or 1"),
    ("img/0.png 1\n", "multilabel",
     "train.txt:1: expected 'relative/path.jpg<TAB>0,1,0,1' on a multi-label task"),
    ("img/0.png 0\nimg/1.png\t0,1,1\n", "multiclass",
     "train.txt:2: a label list on a single-label task; set data.task=multilabel"),
])
def test_bad_label_lines_are_one_line_naming_file_and_line(tmp_path, lines, task, expected):
    write_images(tmp_path)
    (tmp_path / "train.txt").write_text(lines)
    assert expected in one_line_error(DataError, list_config(tmp_path, f"task={task}"))


def test_a_vector_longer_than_the_label_names_is_refused(tmp_path):
    write_images(tmp_path)
    (tmp_path / "train.txt").write_text("img/0.png\t1,0,1\n")
    (tmp_path / "labels.txt").write_text("cat\ndog\n")
    message = one_line_error(DataError, list_config(tmp_path, "task=multilabel",
                                                    "label_names=labels.txt"))
    assert "train.txt:1: the label vector has 3 values, expected 2 (one per line of " \
           "data.label_names)" in message


# --- CSV lists ---------------------------------------------------------------------------------
def test_a_csv_list_reads_label_names_separated_by_spaces(tmp_path):
    write_images(tmp_path)
    write_image(tmp_path / "img" / "a,b.png")
    (tmp_path / "train.csv").write_text('image,tags\nimg/0.png,haze road\nimg/1.png,road\n'
                                        '"img/a,b.png",clear\n\nimg/3.png,clear haze\n')
    config = list_config(tmp_path, "train_list=train.csv", "task=multilabel")
    bundle = build_datasets(config)
    assert bundle.class_names == ["clear", "haze", "road"] and count_classes(config) == 3
    assert bundle.splits["train"].labels.tolist() == [[0, 1, 1], [0, 0, 1], [1, 0, 0],
                                                      [1, 1, 0]]


def test_a_csv_list_on_a_single_label_task_names_one_class_per_row(tmp_path):
    write_images(tmp_path)
    (tmp_path / "train.csv").write_text("path,label\nimg/0.png,b\nimg/1.png,a\nimg/2.png,b\n")
    bundle = build_datasets(list_config(tmp_path, "train_list=train.csv"))
    assert bundle.class_names == ["a", "b"] and bundle.splits["train"].labels.tolist() == [1, 0, 1]
    (tmp_path / "train.csv").write_text("path,label\nimg/0.png,b\nimg/1.png,a b\n")
    message = one_line_error(DataError, list_config(tmp_path, "train_list=train.csv"))
    assert "train.csv:3: a label list on a single-label task" in message


def test_a_csv_list_without_its_header_is_refused(tmp_path):
    write_images(tmp_path)
    (tmp_path / "train.csv").write_text("img/0.png,a\nimg/1.png,b\n")
    message = one_line_error(DataError, list_config(tmp_path, "train_list=train.csv"))
    assert "train.csv:1: the header row is missing" in message and "image,labels" in message


def test_an_unknown_csv_label_names_the_closest_known_one(tmp_path):
    write_images(tmp_path)
    (tmp_path / "train.csv").write_text("image,tags\nimg/0.png,haze\nimg/1.png,raod clear\n")
    (tmp_path / "labels.txt").write_text("clear\nhaze\nroad\n")
    message = one_line_error(DataError, list_config(tmp_path, "train_list=train.csv",
                                                    "task=multilabel", "label_names=labels.txt"))
    assert "train.csv:3: unknown label 'raod'; did you mean 'road'?" in message


def test_single_label_sources_refuse_a_multilabel_task():
    message = one_line_error(ConfigError, data_config("task=multilabel"))
    assert "data.source=digits gives one class per image" in message


# --- digit mosaics -----------------------------------------------------------------------------
def test_digit_mosaics_share_no_digit_between_splits_and_label_their_tiles():
    splits = mosaic_splits(0.1, 0.2, seed=0)
    pixels, digits = digit_images()
    used = {split: set(m.tiles[m.tiles >= 0].tolist()) for split, m in splits.items()}
    assert not (used["train"] & used["val"] or used["train"] & used["test"]
                or used["val"] & used["test"])
    parts = dict(zip(splits, stratified_indices(digits, [None, 0.1, 0.2], 0)))
    for split, mosaics in splits.items():
        assert used[split] <= set(parts[split].tolist())
        assert len(mosaics.pixels) == MOSAICS_PER_DIGIT[split] * len(parts[split])
        assert (mosaics.labels.sum(axis=1) >= 1).all()
        for m in range(0, len(mosaics.pixels), 37):
            shown = {int(digits[t]) for t in mosaics.tiles[m] if t >= 0}
            assert set(np.flatnonzero(mosaics.labels[m]).tolist()) == shown
            for place, tile in enumerate(mosaics.tiles[m]):
                row, column = divmod(place, 2)
                cell = mosaics.pixels[m, 8 * row:8 * row + 8, 8 * column:8 * column + 8]
                assert np.array_equal(cell, pixels[tile] if tile >= 0 else np.zeros((8, 8)))
    assert [len(m.pixels) for m in splits.values()] == [5032, 360, 718]


def test_digit_mosaics_are_deterministic_and_need_a_multilabel_task():
    config = data_config("source=digit_mosaics", "task=multilabel")
    first, again = build_datasets(config), build_datasets(config)
    assert {k: v.labels.shape for k, v in first.splits.items()} == {
        "train": (5032, 10), "val": (360, 10), "test": (718, 10)}
    assert np.array_equal(first.splits["test"].items, again.splits["test"].items)
    other = build_datasets(data_config("source=digit_mosaics", "task=multilabel",
                                       "split_seed=1"))
    assert not np.array_equal(first.splits["test"].items, other.splits["test"].items)
    message = one_line_error(ConfigError, data_config("source=digit_mosaics"))
    assert "digit_mosaics has several labels per image" in message
    assert message.endswith("set data.task=multilabel")


def test_multilabel_fractions_keep_every_label():
    train = build_datasets(data_config("source=digit_mosaics", "task=multilabel")).splits["train"]
    small = take_fraction(train, 0.002, seed=0)
    assert small.multilabel and (small.class_counts() >= 1).all()
    assert len(small) < 25


# --- imbalance ---------------------------------------------------------------------------------
def test_cut_classes_thin_only_the_training_split():
    whole = build_datasets(data_config())
    cut = build_datasets(data_config("cut_classes=[3,5,8]", "cut_fraction=0.1"))
    before, after = whole.splits["train"].class_counts(), cut.splits["train"].class_counts()
    for digit in range(10):
        expected = round(0.1 * before[digit]) if digit in (3, 5, 8) else before[digit]
        assert after[digit] == expected
    for split in ("val", "test"):
        assert np.array_equal(cut.splits[split].positions, whole.splits[split].positions)
    tiny = build_datasets(data_config("cut_classes=[3]", "cut_fraction=0.001"))
    assert tiny.splits["train"].class_counts()[3] == 1


def test_cut_classes_refuse_unknown_names_and_multilabel_data():
    message = one_line_error(ConfigError, data_config("cut_classes=[3,50]"))
    assert "data.cut_classes names '50', which is not a class of the digits data set" in message
    assert "did you mean '5'?" in message
    message = one_line_error(ConfigError, data_config("source=digit_mosaics", "task=multilabel",
                                                      "cut_classes=[3]"))
    assert "data.cut_classes is not supported on multi-label data" in message


def test_the_report_points_to_the_remedies_of_an_imbalanced_training_split():
    stats = compute_dataset_stats(build_datasets(data_config("cut_classes=[3,5,8]")))
    train = stats["splits"]["train"]
    assert train["imbalance"] == pytest.approx(max(train["per_class"].values())
                                               / min(train["per_class"].values()))
    line = [line for line in format_stats(stats).splitlines() if line.startswith("imbalanced")]
    assert line == [f"imbalanced: the largest class has {train['imbalance']:.1f}x the images of "
                    "the smallest; try train.class_weights: balanced or data.sampler: balanced"]
    assert "imbalanced" not in format_stats(compute_dataset_stats(build_datasets(data_config())))


def test_the_report_of_multilabel_data_counts_images_per_label():
    bundle = build_datasets(data_config("source=digit_mosaics", "task=multilabel"))
    stats = compute_dataset_stats(bundle)
    train = stats["splits"]["train"]
    assert stats["task"] == "multilabel"
    assert train["per_class"]["7"] == int(bundle.splits["train"].labels[:, 7].sum())
    assert train["labels_per_image"] == pytest.approx(bundle.splits["train"].labels.sum(1).mean())
    assert "10 labels, 2." in format_stats(stats)
