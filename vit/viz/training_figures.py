"""Training figures from `metrics.json`: the loss plot, accuracy curves, and run comparisons."""

from typing import Dict

import numpy as np
from matplotlib.figure import Figure


def smooth(values, weight: float = 0.8) -> np.ndarray:
    """Exponential moving average with bias correction (TensorBoard/VisualDL-style smoothing)."""
    smoothed, average = [], 0.0
    for count, value in enumerate(values, start=1):
        average = weight * average + (1 - weight) * value
        smoothed.append(average / (1 - weight ** count))
    return np.asarray(smoothed)


def plot_training_loss(metrics: dict, title: str = "Training loss") -> Figure:
    """Train loss per logged step (raw and smoothed) and val loss at the end of each epoch."""
    figure = Figure(figsize=(7.5, 4.2))
    axes = figure.add_subplot()
    steps = np.asarray(metrics.get("steps") or [[0, np.nan, 0]], dtype=float)
    axes.plot(steps[:, 0], steps[:, 1], color="tab:blue", alpha=0.25, linewidth=1,
              label="train loss (per step)")
    axes.plot(steps[:, 0], smooth(steps[:, 1]), color="tab:blue", linewidth=2,
              label="train loss (smoothed)")
    val = [(r["global_step"], r["val_loss"]) for r in metrics["history"]
           if r.get("val_loss") is not None]
    if val:
        axes.plot(*zip(*val), "o-", color="tab:orange", linewidth=2, label="val loss (per epoch)")
    axes.set_xlabel("optimizer step")
    axes.set_ylabel("binary cross-entropy" if metrics.get("task") == "multilabel"
                    else "cross-entropy")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    return figure


# The validation figures drawn per epoch (metrics.json's history), with their legend names.
_VAL_CURVES = (("val_top1", "val top-1", "o-"), ("val_top5", "val top-5", "s--"),
               ("val_balanced_accuracy", "val balanced accuracy", "^-"),
               ("val_map", "val mAP", "o-"))


def plot_accuracy(metrics: dict, title: str = "Validation accuracy") -> Figure:
    """The validation figures per epoch (top-1, top-5 and balanced accuracy, or mAP), with
    the best epoch marked by the figure that picked it."""
    figure = Figure(figsize=(7.5, 4.2))
    axes = figure.add_subplot()
    for key, name, style in _VAL_CURVES:
        rows = [(r["epoch"], r[key]) for r in metrics["history"] if r.get(key) is not None]
        if rows:
            axes.plot(*zip(*rows), style, alpha=1.0 if style == "o-" else 0.7, label=name)
    by, best = metrics.get("best_by", "val_top1"), metrics.get("best_epoch")
    if best is not None and metrics.get(f"best_{by}") is not None:
        axes.axvline(best, color="grey", linestyle=":",
                     label=f"best {by.removeprefix('val_')} {metrics[f'best_{by}']:.4f}")
    axes.set_xlabel("epoch")
    axes.set_ylabel("accuracy" if by != "val_map" else "mean average precision")
    axes.set_ylim(0, 1.02)
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    return figure


def plot_comparison(runs: Dict[str, dict]) -> Figure:
    """Overlay several runs: train and val loss per epoch, and each run's headline validation
    figure per epoch (top-1, or mAP for several labels per image)."""
    figure = Figure(figsize=(12.0, 4.4))
    loss_axes, acc_axes = figure.add_subplot(1, 2, 1), figure.add_subplot(1, 2, 2)
    colors = [f"C{i % 10}" for i in range(len(runs))]
    shown = set()
    for (name, metrics), color in zip(runs.items(), colors):
        history = metrics["history"]
        epochs = [r["epoch"] for r in history]
        loss_axes.plot(epochs, [r["train_loss"] for r in history], "-", color=color,
                       label=f"{name} train")
        val = [(r["epoch"], r["val_loss"]) for r in history if r.get("val_loss") is not None]
        if val:
            loss_axes.plot(*zip(*val), "--", color=color, label=f"{name} val")
        key = "val_map" if metrics.get("task") == "multilabel" else "val_top1"
        acc = [(r["epoch"], r[key]) for r in history if r.get(key) is not None]
        if acc:
            shown.add(key.removeprefix("val_").replace("map", "mAP").replace("top1", "top-1"))
            acc_axes.plot(*zip(*acc), "o-", color=color, markersize=3, label=name)
    loss_axes.set(xlabel="epoch", ylabel="loss", title="Loss (solid: train, dashed: val)")
    acc_axes.set(xlabel="epoch", ylabel="val " + " / ".join(sorted(shown) or ["top-1"]),
                 title="Validation accuracy")
    for axes in (loss_axes, acc_axes):
        axes.grid(alpha=0.3)
        axes.legend(fontsize=8)
    return figure


def plot_scaling(results: dict) -> Figure:
    """Test accuracy against training-set size for each model, mean and sample standard
    deviation over seeds (the scaling experiment's `scaling.json`)."""
    figure = Figure(figsize=(7.0, 4.4))
    axes = figure.add_subplot()
    for index, (name, model) in enumerate(results["models"].items()):
        points = model["points"]
        axes.errorbar([p["train_images"] for p in points], [p["mean"] for p in points],
                      yerr=[p["std"] for p in points], fmt="o-", capsize=4, color=f"C{index}",
                      label=f"{name} ({model['parameters'] / 1e6:.2f} M parameters)")
    sizes = [p["train_images"] for p in next(iter(results["models"].values()))["points"]]
    _size_axis(axes, sizes, "training images (log scale)")
    axes.set_ylabel("test top-1")
    seeds = len(results["seeds"])
    axes.set_title(f"Accuracy against data size on {results['source']} ({results['epochs']} "
                   f"epochs, >= {results['min_steps']} steps, {seeds} seed{'s' * (seeds != 1)})",
                   fontsize=10)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    return figure


def _size_axis(axes, sizes, label: str, tick=str):
    """A log-scale x axis of data-set sizes, ticked at `sizes` (written by `tick`)."""
    axes.set_xscale("log")
    axes.set_xlim(min(sizes) / 1.5, max(sizes) * 1.5)
    axes.set_xticks(sizes)
    axes.set_xticklabels([tick(s) for s in sizes])
    axes.minorticks_off()
    axes.set_xlabel(label)


def plot_transfer(results: dict) -> Figure:
    """The transfer experiment's `transfer.json`: linear k-shot accuracy of the frozen features
    (left, the paper's Figure 4) and fine-tuned top-1 (right, its Figure 3) against
    pre-training size on a log axis, per model, mean and sample standard deviation over seeds;
    hollow markers are points whose pre-training did not converge, dotted lines each model
    without pre-training (probed at random initialisation, fine-tuned from scratch)."""
    figure = Figure(figsize=(12.0, 4.8))
    left, right = figure.subplots(1, 2)
    for index, (name, model) in enumerate(results["models"].items()):
        label = f"{name} ({model['parameters'] / 1e6:.2f} M)"
        shots = results["shots"]
        for shot, k in enumerate(shots):  # fainter as k grows
            _transfer_curve(left, model, lambda p, k=k: p["probe"][str(k)],
                            model["random_probe"][str(k)], f"C{index}", "os^Dv"[shot % 5],
                            f"{label}, {k}-shot", 1.0 - 0.6 * shot / max(1, len(shots) - 1))
        _transfer_curve(right, model, lambda p: p["finetune_top1"], model["scratch_top1"],
                        f"C{index}", "o", label, 1.0)
    sizes = results["sizes"]
    fewest, most = min(results["classes"]), max(results["classes"])
    classes = f"{fewest}" if fewest == most else f"{fewest} to {most}"
    for axes, title in (
            (left, f"linear few-shot on {results['source']}, frozen features"),
            (right, f"fine-tuned on {results['finetune_images']} {results['source']} images")):
        _size_axis(axes, sizes, f"pre-training images ({classes} fractal classes, log scale)",
                   _short_count)
        axes.set_ylabel("test top-1")
        axes.set_title(title + " (dotted: no pre-training)", fontsize=10)
        axes.grid(alpha=0.3)
        axes.legend(loc="lower right", fontsize=7)
    figure.suptitle(f"Pre-train on generated fractals, then transfer (at least "
                    f"{results['pretrain_steps']} steps, {results['pretrain_epochs']} pass(es); "
                    "hollow: pre-training not converged)", fontsize=11)
    return figure


def _transfer_curve(axes, model: dict, figure_of, reference: dict, color: str, marker: str,
                    label: str, alpha: float):
    """One model's curve of `figure_of(point)` with error bars, hollow where not converged,
    and its `reference` as a dotted line."""
    points = [p for p in model["points"] if figure_of(p)["per_seed"]]
    sizes = [p["pretrain_images"] for p in points]
    means = [figure_of(p)["mean"] for p in points]
    axes.errorbar(sizes, means, yerr=[figure_of(p)["std"] for p in points], fmt="-",
                  capsize=3, color=color, alpha=alpha, label=label)
    for point, size, mean in zip(points, sizes, means):
        axes.plot(size, mean, marker, color=color, alpha=alpha,
                  markerfacecolor=color if point["converged"] else "white")
    if reference["per_seed"]:
        axes.axhline(reference["mean"], color=color, linestyle=":", alpha=0.6 * alpha)


def _short_count(count: int) -> str:
    """1,000,000 -> 1M, 300,000 -> 300k, 24 -> 24: ticks that fit side by side."""
    for size, suffix in ((1_000_000, "M"), (1_000, "k")):
        if count >= size and count % size == 0:
            return f"{count // size}{suffix}"
    return f"{count:,}"
