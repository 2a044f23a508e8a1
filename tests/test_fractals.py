"""The generated `fractals` source: deterministic, classes that differ, cached once, and usable
wherever a data source is (the report, the trainer)."""

import numpy as np

from conftest import run_tool
from vit.config import load_config
from vit.data import build_datasets
from vit.data.fractals import cache_file, render_fractals
from vit.data.sources import count_classes


def fractal_config(tmp_path, **data):
    keys = {"source": "fractals", "root": tmp_path, "fractal_classes": 6,
            "fractal_per_class": 20, "fractal_size": 16, **data}
    return load_config(None, [f"data.{k}={v}" for k, v in keys.items()]).data


def test_same_seed_same_images_other_seed_other_images():
    images, labels = render_fractals(4, 5, 16, seed=3)
    again, _ = render_fractals(4, 5, 16, seed=3)
    other, _ = render_fractals(4, 5, 16, seed=4)
    assert images.shape == (20, 16, 16, 3) and images.dtype == np.uint8
    assert labels.tolist() == [c for c in range(4) for _ in range(5)]
    assert np.array_equal(images, again)
    assert not np.array_equal(images, other)


def test_classes_differ_more_than_their_instances():
    """The share of lit pixels, a statistic blind to the flips and colours of the instances,
    varies far more between classes than within one (a one-way ANOVA F above 10)."""
    images, labels = render_fractals(10, 30, 16, seed=0)
    fill = (images.max(-1) > 0).mean((1, 2))
    per_class = fill.reshape(10, 30)
    between = per_class.mean(1).var(ddof=1) * 30
    within = per_class.var(1, ddof=1).mean()
    assert between / within > 10, (between, within)
    assert (per_class.mean(1) > 0.05).all()  # no class is a dot or a line


def test_source_renders_once_then_reads_its_cache(tmp_path, monkeypatch):
    config = fractal_config(tmp_path)
    bundle = build_datasets(config)
    assert bundle.num_classes == count_classes(config) == 6
    assert bundle.class_names[0] == "fractal_0"
    sizes = {split: len(images) for split, images in bundle.splits.items()}
    assert sum(sizes.values()) == 120 and sizes["test"] == 24 and sizes["val"] == 12
    assert cache_file(config).is_file()
    import vit.data.fractals as fractals

    def no_render(*args, **kwargs):
        raise AssertionError("rendered again")

    monkeypatch.setattr(fractals, "render_fractals", no_render)
    again = build_datasets(config)
    assert np.array_equal(again.splits["train"].items, bundle.splits["train"].items)


def test_an_unreadable_cache_is_rendered_again(tmp_path, caplog):
    config = fractal_config(tmp_path)
    reference = build_datasets(config).splits["train"].items
    cache_file(config).write_bytes(b"not an npz")
    again = build_datasets(config).splits["train"].items
    assert np.array_equal(again, reference)
    assert "cannot be read" in caplog.text
    assert np.load(cache_file(config))["images"].shape == (120, 16, 16, 3)


def test_the_data_report_describes_fractals(tmp_path):
    overrides = ["data.source=fractals", f"data.root={tmp_path / 'cache'}",
                 "data.fractal_classes=3", "data.fractal_per_class=10",
                 f"output.dir={tmp_path / 'out'}"]
    result = run_tool("train", "--stats-only", *[a for o in overrides for a in ("-o", o)])
    assert result.returncode == 0, result.stderr
    assert "3 classes" in result.stdout + result.stderr, result.stdout + result.stderr


def test_the_data_benchmark_times_the_renderer(tmp_path):
    result = run_tool("benchmark_data", "-o", "data.source=fractals",
                      "-o", f"data.root={tmp_path}", "-o", "data.fractal_classes=4",
                      "-o", "data.fractal_per_class=10", "--workers", "0", "--epochs", "1")
    assert result.returncode == 0, result.stderr
    assert "rendering the fractals:" in result.stdout and "40 images of 32x32" in result.stdout
