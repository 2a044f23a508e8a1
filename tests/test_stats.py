"""Dataset information: numbers on a data set whose answers are known, and the report files."""

import json

import numpy as np
from PIL import Image

from conftest import assert_one_line_error, make_messy_folder, run_tool, write_image
from vit.config import load_config
from vit.data import build_datasets, compute_dataset_stats, format_stats


def test_statistics_of_a_known_data_set(tmp_path):
    write_image(tmp_path / "red" / "a.png", size=(4, 2), color=(255, 0, 0))
    write_image(tmp_path / "red" / "b.png", size=(4, 2), color=(255, 0, 0))
    write_image(tmp_path / "blue" / "c.png", size=(8, 2), color=(0, 0, 255))
    config = load_config(None, ["data.source=folder", f"data.root={tmp_path}",
                                "data.val_fraction=0", "data.test_fraction=0"])
    stats = compute_dataset_stats(build_datasets(config.data))
    train = stats["splits"]["train"]
    assert train["num_images"] == 3
    assert train["per_class"] == {"blue": 1, "red": 2}
    assert train["class_balance"] == 0.5
    assert train["image_size"] == {"width": {"min": 4, "median": 4.0, "max": 8},
                                   "height": {"min": 2, "median": 2.0, "max": 2}}
    # 16 red and 16 blue pixels
    np.testing.assert_allclose(train["channel_mean"], [0.5, 0.0, 0.5])
    np.testing.assert_allclose(train["channel_std"], [0.5, 0.0, 0.5])
    assert train["formats"] == {"PNG": 3}
    assert stats["skipped"] == [] and stats["class_names"] == ["blue", "red"]


def test_digits_statistics_match_numpy():
    from sklearn.datasets import load_digits

    bundle = build_datasets(load_config().data)
    stats = compute_dataset_stats(bundle)
    pixels = np.round(load_digits().images * 255 / 16) / 255
    total_mean = sum(s["channel_mean"][0] * s["num_images"] for s in stats["splits"].values()) / 1797
    assert abs(total_mean - pixels.mean()) < 1e-5
    assert stats["total_images"] == 1797
    assert sum(sum(s["per_class"].values()) for s in stats["splits"].values()) == 1797
    assert "1,258" in format_stats(stats)


def test_sampled_channel_statistics_use_the_configured_number(tmp_path):
    for i in range(12):
        write_image(tmp_path / ("a" if i % 2 else "b") / f"{i}.png", color=(i * 20, 0, 0))
    config = load_config(None, ["data.source=folder", f"data.root={tmp_path}",
                                "data.val_fraction=0", "data.test_fraction=0"])
    stats = compute_dataset_stats(build_datasets(config.data), max_images=5)
    assert stats["splits"]["train"]["channel_stats_images"] == 5


def test_stats_only_writes_the_report_for_digits(tmp_path):
    result = run_tool("train", "--stats-only", "-o", f"output.dir={tmp_path}",
                      "-o", "output.run_name=stats")
    assert result.returncode == 0, result.stderr
    assert "Data set 'digits': 10 classes, 1,797 images" in result.stdout
    run = tmp_path / "stats"
    stats = json.loads((run / "stats.json").read_text())
    per_class_total = sum(sum(split["per_class"].values()) for split in stats["splits"].values())
    assert per_class_total == 1797
    assert set(stats["splits"]) == {"train", "val", "test"}
    for name in ("data_class_histogram", "data_image_sizes", "data_samples",
                 "data_samples_preprocessed"):
        with Image.open(run / "figures" / f"{name}.png") as figure:
            assert figure.size[0] > 300 and figure.size[1] > 200
    assert (run / "config.yaml").is_file()


def test_stats_only_on_the_messy_folder_lists_the_skipped(tmp_path):
    root, good, bad = make_messy_folder(tmp_path / "pets")
    result = run_tool("train", "--stats-only", "-o", "data.source=folder", "-o", f"data.root={root}",
                      "-o", "data.val_fraction=0", "-o", "data.test_fraction=0",
                      "-o", f"output.dir={tmp_path / 'out'}", "-o", "output.run_name=r")
    assert result.returncode == 0, result.stderr
    stats = json.loads((tmp_path / "out" / "r" / "stats.json").read_text())
    assert {item["path"] for item in stats["skipped"]} == bad
    assert stats["splits"]["train"]["num_images"] == len(good)
    assert stats["empty_classes"] == ["birds"]
    assert "skipped files: 2" in result.stdout


def test_stats_only_with_a_missing_folder_is_one_line(tmp_path):
    result = run_tool("train", "--stats-only", "-o", "data.source=folder",
                      "-o", f"data.root={tmp_path / 'nope'}")
    assert_one_line_error(result, "is not a folder")


def test_array_statistics_are_exact_across_chunks_without_a_float_copy():
    """In-memory images are summed as integers a chunk at a time (a million 16x16 fractals as
    float64 were 6 GB); the figures equal NumPy's over the whole float array."""
    from vit.data.stats import _array_statistics

    rng = np.random.default_rng(0)
    for items in (rng.integers(0, 256, (12_345, 4, 4, 3), dtype=np.uint8),
                  rng.integers(0, 256, (10_001, 3, 5), dtype=np.uint8)):
        pixels = items.astype(np.float64) / 255.0
        flat = (pixels[..., None].repeat(3, -1) if items.ndim == 3 else pixels).reshape(-1, 3)
        mean, std = _array_statistics(items)
        np.testing.assert_allclose(mean, flat.mean(0), atol=1e-6)
        np.testing.assert_allclose(std, flat.std(0), atol=1e-6)
