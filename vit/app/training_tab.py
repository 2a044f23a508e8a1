"""The Training tab: start a run as its own process, watch its loss and accuracy live, stop
and resume it, and overlay earlier runs with the differences of their configs."""

import shlex
from pathlib import Path
from typing import List

import gradio as gr
import yaml

from ..config import load_config, shipped_configs
from ..engine.compare import COLUMNS, compare_runs, draw_run_figures
from ..engine.run_log import load_metrics
from ..models import BASELINES, list_models
from .common import (DATA_FIELD_KEYS, AppFolders, changed_overrides, empty_table, form_values,
                     stamp, user_errors)
from .i18n import AppError, language_of, say, t, translations
from .runs import TrainingRuns


def progress_line(run_dir: Path, status: dict, language: str = "en") -> str:
    """One line: state, epoch, step, images/s, time left (or the end message)."""
    state = status.get("state", "none")
    if state in ("starting", "preparing") or (state == "running" and "step" not in status):
        return say(language, "progress.starting", run=run_dir.name)
    if state == "none":
        return say(language, "progress.no_status", run=run_dir.name)
    shown = say(language, f"state.{state}") if f"state.{state}" in translations()["en"] else state
    line = say(language, "progress.line", run=run_dir.name, state=shown,
                epoch=status.get("epoch", "?"), epochs=status.get("epochs", "?"),
                step=status.get("step", 0), steps=status.get("steps", "?"))
    if status.get("images_per_s"):
        line += say(language, "progress.speed", speed=f"{status['images_per_s']:.0f}")
    if state == "running" and status.get("seconds_left") is not None:
        line += say(language, "progress.left", seconds=f"{status['seconds_left']:.0f}")
    if status.get("message"):
        line += f" — {status['message']}"
    if status.get("checkpoint"):
        line += "\n\n" + say(language, "progress.checkpoint", path=status["checkpoint"])
    return line


def config_differences(run_dirs: List[Path]) -> List[List[str]]:
    """Rows (key, value in each run) for every config key on which the runs differ."""
    flat = []
    for run_dir in run_dirs:
        try:
            raw = yaml.safe_load((run_dir / "config.yaml").read_text(encoding="utf-8")) or {}
        except OSError:
            raw = {}
        flat.append({f"{section}.{key}": value for section, values in raw.items()
                     for key, value in (values or {}).items()})
    keys = sorted(set().union(*flat)) if flat else []
    return [[key, *(str(run.get(key)) for run in flat)] for key in keys
            if key not in ("output.run_name", "output.dir", "train.resume")
            and len({str(run.get(key)) for run in flat}) > 1]


def comparison_headers(language: str = "en") -> List[str]:
    """The columns of the final-numbers table: `tools/compare.py`'s, in words."""
    return [say(language, f"compare.column.{column}") for column in COLUMNS]


def difference_headers(language: str = "en", names: List[str] = ()) -> List[str]:
    """The columns of the config-differences table: the key, then the value in each run (one
    column standing for them while no run is picked)."""
    return [say(language, "compare.key"), *(names or [say(language, "compare.values")])]


# The Training tab's settings, by the config key each field shows.
FORM_KEYS = ("model.name", "model.pretrained", "train.epochs", "optim.lr", "optim.warmup_epochs",
             "data.batch_size")


def training_tab(folders: AppFolders, runs: TrainingRuns, data_fields) -> dict:
    """Build the Training tab; it polls the run folder, so a reloaded page finds the run.
    Returns the handlers to run when a page loads (`load`: (function, inputs, outputs))."""
    configs = shipped_configs()
    gr.Markdown(t("training.intro"))
    config, fields, name = _settings(configs)
    with gr.Row():
        start = gr.Button(t("training.start"), variant="primary", elem_id="start-run")
        stop = gr.Button(t("training.stop"), variant="stop", elem_id="stop-run")
        resume = gr.Button(t("training.resume"), elem_id="resume-run")
    command = gr.Markdown(elem_id="train-command")
    current = gr.State()  # the run folder this page shows
    line = gr.Markdown(elem_id="progress-line")
    with gr.Row():
        loss = gr.Image(label=t("training.loss"), type="filepath", elem_id="loss-figure")
        accuracy = gr.Image(label=t("training.accuracy"), type="filepath")
    console = gr.Textbox(label=t("training.console"), lines=6, elem_id="run-console")
    watched = [line, loss, accuracy, console]
    keys = (*FORM_KEYS, *DATA_FIELD_KEYS)

    @user_errors
    def on_start(request: gr.Request, config_name, run_name, *values):
        chosen = load_config(configs[config_name])
        overrides = changed_overrides(chosen, keys, values)
        load_config(configs[config_name], overrides)  # a mistake is reported here, not later
        run_name = run_name.strip() or f"app-{stamp()}"
        run_dir = runs.start(configs[config_name], overrides, run_name)
        shown = runs.command(configs[config_name], runs.launch_overrides(overrides, run_name),
                             program=("python", "tools/train.py"))
        language = language_of(request)
        return (str(run_dir), say(language, "training.command", command=shlex.join(shown),
                                  dashboard=f"visualdl --logdir {run_dir / 'vdl'} "
                                            "--disable-telemetry"),
                *watch_run(folders, runs, str(run_dir), language))

    @user_errors
    def on_stop(run_dir, request: gr.Request):
        target = runs.active() or (Path(run_dir) if run_dir else None)
        if target is None:
            raise AppError("error.no_training")
        language = language_of(request)
        gr.Info(say(language, "training.stop_requested", run=runs.stop(target)))
        return watch_run(folders, runs, str(target), language)

    @user_errors
    def on_resume(run_dir, request: gr.Request):
        if not run_dir:
            raise AppError("error.no_run_shown")
        return (str(runs.resume(run_dir)),
                *watch_run(folders, runs, run_dir, language_of(request)))

    def attach(run_dir, request: gr.Request):
        """On page load and every tick: follow the active run when there is one."""
        active = runs.active()
        run_dir = str(active) if active else run_dir
        if not run_dir:
            recent = runs.finished_runs()
            run_dir = str(recent[0]) if recent else None
        return (run_dir, *watch_run(folders, runs, run_dir, language_of(request)))

    config.change(lambda chosen: form_values(load_config(configs[chosen]), keys), config,
                  [*fields, *data_fields])
    start.click(on_start, [config, name, *fields, *data_fields], [current, command, *watched])
    stop.click(on_stop, current, watched)
    resume.click(on_resume, current, [current, *watched])
    timer = gr.Timer(2.0)
    timer.tick(attach, current, [current, *watched])
    comparison = _comparison(folders, runs)
    return {"load": [(attach, current, [current, *watched]), *comparison]}


def _settings(configs: dict):
    """The config choice, the fields of FORM_KEYS showing the default config, and the run
    name."""
    values = dict(zip(FORM_KEYS, form_values(load_config(configs["default"]), FORM_KEYS)))
    with gr.Row():
        config = gr.Dropdown(list(configs), value="default", label=t("training.config"),
                             elem_id="config-choice")
        fields = [
            gr.Dropdown(list_models() + list(BASELINES), value=values["model.name"],
                        label=t("model"), elem_id="model-name"),
            gr.Textbox(value=values["model.pretrained"], label=t("training.pretrained"),
                       placeholder=t("training.from_scratch"), elem_id="pretrained"),
            gr.Number(value=values["train.epochs"], precision=0, label=t("training.epochs"),
                      elem_id="epochs"),
            gr.Number(value=values["optim.lr"], label=t("training.lr"), elem_id="lr"),
            gr.Number(value=values["optim.warmup_epochs"], label=t("training.warmup"),
                      elem_id="warmup"),
            gr.Number(value=values["data.batch_size"], precision=0,
                      label=t("training.batch_size"), elem_id="batch-size")]
        name = gr.Textbox(label=t("training.run_name"), elem_id="run-name")
    return config, fields, name


def watch_run(folders: AppFolders, runs: TrainingRuns, run_dir, language: str = "en"):
    """The shown run's progress line, figures and output."""
    if not run_dir:
        return say(language, "training.no_run"), None, None, ""
    run_dir = Path(run_dir)
    status = runs.status(run_dir)
    figures = [None, None]
    try:
        paths = draw_run_figures(folders.scratch / "live" / run_dir.name, load_metrics(run_dir))
        figures = [str(paths["loss"]), str(paths["accuracy"])]
    except Exception:  # no epoch recorded yet, or a file half-written: next tick
        pass
    return progress_line(run_dir, status, language), *figures, status.get("console", "")


def _comparison(folders: AppFolders, runs: TrainingRuns):
    """Earlier runs overlaid, their final numbers and config differences; returns the
    handlers to run when a page loads."""
    gr.Markdown(t("compare.intro"))
    with gr.Row():
        chosen = gr.Dropdown([], multiselect=True, label=t("compare.runs"),
                             elem_id="compare-runs")
        refresh = gr.Button(t("refresh"))
        compare = gr.Button(t("compare.compare"), elem_id="compare")
    figure = gr.Image(label=t("compare.figure"), type="filepath", elem_id="comparison-figure")
    table = gr.Dataframe(label=t("compare.numbers"), interactive=False,
                         elem_id="compare-numbers", headers=comparison_headers())
    differences = gr.Dataframe(label=t("compare.differences"), interactive=False,
                               elem_id="compare-differences", headers=difference_headers())

    def listing():
        return gr.update(choices=[p.name for p in runs.finished_runs()])

    @user_errors
    def on_compare(names, request: gr.Request):
        if not names:
            raise AppError("error.no_runs_picked")
        language = language_of(request)
        run_dirs = [runs.output_dir / name for name in names]
        result = compare_runs(run_dirs, folders.scratch / "compare")
        rows = [[str(row[key]) for key in COLUMNS] for row in result["rows"]]
        nothing = [[say(language, "compare.none")] + [""] * len(names)]
        return (str(result["figure"]),
                gr.update(value=rows, headers=comparison_headers(language)),
                gr.update(value=config_differences(run_dirs) or nothing,
                          headers=difference_headers(language, names)))

    refresh.click(listing, None, chosen)
    compare.click(on_compare, chosen, [figure, table, differences])
    return [(listing, None, chosen), (empty_table(comparison_headers), None, table),
            (empty_table(difference_headers), None, differences)]
