"""A run's figures, and comparing runs: their curves overlaid in one figure, a table of final
numbers, and the config keys on which they differ."""

import csv
from pathlib import Path
from typing import Dict, List, Sequence

from ..config import load_config
from ..errors import VitError
from ..viz import save_figure
from ..viz.training_figures import plot_accuracy, plot_comparison, plot_training_loss
from .run_folder import RunFolder
from .run_log import load_metrics

# The validation figures are the best epoch's (`best_by` picked it); a run of one task leaves the
# other task's columns empty.
COLUMNS = ("run", "epochs", "best_by", "best_epoch", "best_val_top1", "best_val_balanced_accuracy",
           "best_val_map", "final_train_loss", "final_val_loss", "test_top1",
           "test_balanced_accuracy", "test_map")
# Config keys that say where a run went or how it was started, never what it trained: two runs
# never differ by them.
NOT_COMPARED = ("output.dir", "output.run_name", "train.resume")
# ... and the keys that change how a run is carried out, never what it learns
HOW_NOT_WHAT = NOT_COMPARED + ("train.num_threads", "data.num_workers", "train.log_every",
                               "train.keep_checkpoints", "train.compare_with",
                               "data.eval_batch_size")


def draw_run_figures(run_dir: Path, metrics: dict, compare_with=()) -> Dict[str, Path]:
    """A run's `figures/loss.png` and `figures/accuracy.png`, and `figures/comparison.png` with
    the runs in `compare_with` when there are any."""
    figures = RunFolder(run_dir).figures
    paths = {"loss": save_figure(plot_training_loss(metrics), figures / "loss.png"),
             "accuracy": save_figure(plot_accuracy(metrics), figures / "accuracy.png")}
    if compare_with:
        runs = {Path(p).name: load_metrics(p) for p in compare_with}
        runs[run_dir.name] = metrics
        paths["comparison"] = save_figure(plot_comparison(runs), figures / "comparison.png")
    return paths


def summarize_run(name: str, metrics: dict) -> dict:
    """One table row: the final and best numbers of a run."""
    history = metrics.get("history") or []
    last = history[-1] if history else {}
    val_losses = [r["val_loss"] for r in history if r.get("val_loss") is not None]
    test = metrics.get("test") or {}
    return {"run": name, "epochs": last.get("epoch"),
            "best_by": metrics.get("best_by", "val_top1"),  # runs before the choice: top-1
            "best_epoch": metrics.get("best_epoch"),
            **{key: metrics.get(key) for key in COLUMNS if key.startswith("best_val_")},
            "final_train_loss": last.get("train_loss"),
            "final_val_loss": val_losses[-1] if val_losses else None,
            **{key: test.get(key.removeprefix("test_")) for key in COLUMNS
               if key.startswith("test_")}}


def _run_names(run_dirs: Sequence[Path]) -> List[str]:
    """Folder names, made unique with their parent where two runs share a name."""
    names = [path.name for path in run_dirs]
    return [f"{path.parent.name}/{path.name}" if names.count(path.name) > 1 else path.name
            for path in run_dirs]


def compare_runs(run_dirs: Sequence, output_dir) -> Dict[str, object]:
    """Overlay the loss and accuracy curves of `run_dirs`, tabulate their final numbers and
    list the config keys on which they differ.

    Returns:
        dict with `figure` (PNG path), `table` (CSV path), `rows` (list of dicts), `names`
        (the runs' names in the rows) and `differences` (`config_differences`).
    """
    run_dirs = [Path(p) for p in run_dirs]
    if len(run_dirs) < 1:
        raise VitError("no runs to compare", "give one or more run folders")
    runs = {name: load_metrics(path) for name, path in zip(_run_names(run_dirs), run_dirs)}
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    figure = save_figure(plot_comparison(runs), output_dir / "comparison.png")
    rows = [summarize_run(name, metrics) for name, metrics in runs.items()]
    table = output_dir / "comparison.csv"
    with open(table, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    return {"figure": figure, "table": table, "rows": rows, "names": list(runs),
            "differences": config_differences(run_dirs)}


def config_differences(run_dirs: Sequence) -> Dict[str, list]:
    """The config keys on which the runs' recorded configs differ (NOT_COMPARED left out).

    Each run's `config.yaml` is read as the trainer reads a config, so a key the file leaves
    out counts with its default.

    Returns:
        dict of `section.key` -> its value in each run, in the order of `run_dirs`, keys in the
        schema's order.

    Raises:
        VitError: a run folder without a recorded config.
        ConfigError: a recorded config that is no longer valid.
    """
    configs = []
    for path in run_dirs:
        folder = RunFolder(path)
        if not folder.config_file.is_file():
            raise VitError(f"{folder.path} has no {RunFolder.CONFIG} to compare",
                           "compare run folders that the trainer wrote")
        configs.append(load_config(folder.config_file).to_dict())
    return setting_differences(configs)


def setting_differences(configs: Sequence[dict], ignore: Sequence[str] = NOT_COMPARED
                        ) -> Dict[str, list]:
    """`section.key` -> its value in each of `configs` (`Config.to_dict()` data), for the keys
    on which they differ, `ignore` left out, in the schema's order."""
    differences = {}
    for section, values in (configs[0] if configs else {}).items():
        for key in values:
            name = f"{section}.{key}"
            runs = [config[section][key] for config in configs]
            if name not in ignore and any(value != runs[0] for value in runs[1:]):
                differences[name] = runs
    return differences


def format_rows(rows: List[dict]) -> str:
    """The comparison table for the terminal, without the columns no run has a number in."""
    columns = shown_columns(rows)
    table = [columns] + [[format_cell(row[c]) for c in columns] for row in rows]
    widths = [max(len(line[i]) for line in table) for i in range(len(columns))]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip()
                     for line in table)


def shown_columns(rows: List[dict]) -> List[str]:
    """The COLUMNS that some run has a value in."""
    return [c for c in COLUMNS if any(row[c] is not None for row in rows)]


def format_cell(value) -> str:
    """A table cell: a figure to 4 places, a gap as "-"."""
    if value is None:
        return "-"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def format_differences(differences: Dict[str, list], names: Sequence[str]) -> str:
    """The config differences for the terminal: a key per line, its value in each run."""
    if not differences:
        return "the runs' configs do not differ"
    table = [["key", *names]] + [[key, *map(str, values)] for key, values in differences.items()]
    widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
    return "\n".join("  ".join(text.ljust(width) for text, width in zip(line, widths)).rstrip()
                     for line in table)
