"""The Training tab: start a run as its own process, watch its loss and accuracy live, stop
and resume it, and overlay earlier runs with the differences of their configs. A run's figures
are its task's headline (score_words.py): top-1 and balanced accuracy, or for several labels
per image mAP and exact match."""

import shlex
from pathlib import Path
from typing import List, Optional

import gradio as gr

from ..config import load_config, shipped_configs
from ..engine.compare import COLUMNS, compare_runs, draw_run_figures, format_cell, shown_columns
from ..engine.run_folder import RunFolder, runs_in
from ..engine.run_log import load_metrics
from ..errors import VitError
from ..models import BASELINES, list_models
from .common import (DATA_FIELD_KEYS, AppFolders, bind, changed_overrides, choice_field,
                     empty_table, form_values, label, stamp, user_errors)
from .i18n import AppError, language_of, say, t, translations
from .runs import TrainingRuns
from .score_words import figure_name, run_headline


def progress_line(run_dir: Path, status: dict, language: str = "en",
                  metrics: Optional[dict] = None) -> str:
    """One line: state, epoch, step, images/s, time left (or the end message); then, from the
    run's `metrics` when it has recorded an epoch, its headline figures (its test figures once
    it is tested, which replace the end message: the same figures, in English)."""
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
    tested = state == "finished" and (metrics or {}).get("test")
    if status.get("message") and not tested:
        line += f" — {status['message']}"
    headline = run_headline(language, metrics) if metrics else ""
    if headline:
        line += "\n\n" + headline
    if status.get("checkpoint"):
        line += "\n\n" + say(language, "progress.checkpoint", path=status["checkpoint"])
    return line


def comparison_headers(language: str = "en", columns=COLUMNS) -> List[str]:
    """The columns of the final-numbers table: `tools/compare.py`'s (or those of them given),
    in words."""
    return [say(language, f"compare.column.{column}") for column in columns]


def difference_headers(language: str = "en", names: List[str] = ()) -> List[str]:
    """The columns of the config-differences table: the key, then the value in each run (one
    column standing for them while no run is picked)."""
    return [say(language, "compare.key"), *(names or [say(language, "compare.values")])]


# The Training tab's settings, by the config key each field shows: those of every run, then
# the options for a skewed data set and the figure that picks the best checkpoint.
FORM_KEYS = ("model.name", "model.pretrained", "train.epochs", "optim.lr", "optim.warmup_epochs",
             "data.batch_size", "train.class_weights", "data.sampler", "train.select_best_by")
# What a chosen config fills in and Start sends: this tab's fields, then the Data tab's.
RUN_KEYS = (*FORM_KEYS, *DATA_FIELD_KEYS)


def training_tab(folders: AppFolders, runs: TrainingRuns, data_fields) -> dict:
    """Build the Training tab: lay out the page and wire its events to the handlers below. It
    polls the run folder, so a reloaded page finds the run. Returns the handlers to run when a
    page loads (`load`: (function, inputs, outputs))."""
    configs = shipped_configs()
    gr.Markdown(t("training.intro"))
    config, fields, name = _settings(configs)
    with gr.Row():
        start = gr.Button(t("training.start"), variant="primary", elem_id="start-run")
        stop = gr.Button(t("training.stop"), variant="stop", elem_id="stop-run")
        resume = gr.Button(t("training.resume"), elem_id="resume-run")
    command = gr.Markdown(elem_id="train-command")
    current = gr.State()  # the run folder this page shows
    watched = _run_view()
    form = [*fields, *data_fields]  # RUN_KEYS
    follow = bind(follow_run, folders, runs)
    config.change(bind(show_config, configs), config, form)
    start.click(bind(start_run, folders, runs, configs), [config, name, *form],
                [current, command, *watched])
    stop.click(bind(stop_run, folders, runs), current, watched)
    resume.click(bind(resume_run, folders, runs), current, [current, *watched])
    gr.Timer(2.0).tick(follow, current, [current, *watched])
    return {"load": [(follow, current, [current, *watched]), *_comparison(folders, runs)]}


def show_config(configs: dict, chosen: str) -> list:
    """On choosing a config: the values of the form (RUN_KEYS) as that config sets them."""
    return form_values(load_config(configs[chosen]), RUN_KEYS)


@user_errors
def start_run(folders: AppFolders, runs: TrainingRuns, configs: dict, request: gr.Request,
              config_name: str, run_name: str, *values):
    """Start: run the chosen config with the fields the user changed as `-o` overrides, show
    the same command for a terminal and the run's dashboard, and follow the run."""
    path = configs[config_name]
    overrides = changed_overrides(load_config(path), RUN_KEYS, values)
    load_config(path, overrides)  # a mistake is reported here, not later
    run_name = run_name.strip() or f"app-{stamp()}"
    run_dir = runs.start(path, overrides, run_name)
    shown = runs.command(path, runs.launch_overrides(overrides, run_name),
                         program=("python", "tools/train.py"))
    language = language_of(request)
    return (str(run_dir), say(language, "training.command", command=shlex.join(shown),
                              dashboard=RunFolder(run_dir).visualdl_command),
            *watch_run(folders, runs, str(run_dir), language))


@user_errors
def stop_run(folders: AppFolders, runs: TrainingRuns, run_dir, request: gr.Request):
    """Stop: ask the training run (or the shown one) to stop; it saves a checkpoint at its next
    step."""
    target = runs.active() or (Path(run_dir) if run_dir else None)
    if target is None:
        raise AppError("error.no_training")
    language = language_of(request)
    gr.Info(say(language, "training.stop_requested", run=runs.stop(target)))
    return watch_run(folders, runs, str(target), language)


@user_errors
def resume_run(folders: AppFolders, runs: TrainingRuns, run_dir, request: gr.Request):
    """Resume: continue the shown run from its newest checkpoint, and follow it."""
    if not run_dir:
        raise AppError("error.no_run_shown")
    return (str(runs.resume(run_dir)),
            *watch_run(folders, runs, run_dir, language_of(request)))


def follow_run(folders: AppFolders, runs: TrainingRuns, run_dir, request: gr.Request):
    """On page load and every tick: show the run that is training, else the shown one, else
    the newest."""
    active = runs.active()
    run_dir = str(active) if active else run_dir
    if not run_dir:
        recent = runs_in(runs.output_dir)
        run_dir = str(recent[0].path) if recent else None
    return (run_dir, *watch_run(folders, runs, run_dir, language_of(request)))


def _settings(configs: dict):
    """The config choice, the fields of FORM_KEYS showing the default config, and the run
    name."""
    values = dict(zip(FORM_KEYS, form_values(load_config(configs["default"]), FORM_KEYS)))
    with gr.Row():
        config = gr.Dropdown(list(configs), value="default", label=label("config"),
                             elem_id="config-choice")
        fields = [
            gr.Dropdown(list_models() + list(BASELINES), value=values["model.name"],
                        label=label("model.name"), elem_id="model-name"),
            gr.Textbox(value=values["model.pretrained"], label=label("model.pretrained"),
                       info=t("training.pretrained.info"), placeholder=t("training.from_scratch"),
                       elem_id="pretrained"),
            gr.Number(value=values["train.epochs"], precision=0, label=label("train.epochs"),
                      elem_id="epochs"),
            gr.Number(value=values["optim.lr"], label=label("optim.lr"), elem_id="lr"),
            gr.Number(value=values["optim.warmup_epochs"], label=label("optim.warmup_epochs"),
                      elem_id="warmup"),
            gr.Number(value=values["data.batch_size"], precision=0,
                      label=label("data.batch_size"), elem_id="batch-size")]
        name = gr.Textbox(label=label("output.run_name"), placeholder=t("training.unnamed"),
                          elem_id="run-name")
    with gr.Row():
        fields += [
            choice_field("train.class_weights", values["train.class_weights"],
                         info=t("training.class_weights.info"), elem_id="class-weights"),
            choice_field("data.sampler", values["data.sampler"], info=t("training.sampler.info"),
                         elem_id="sampler"),
            choice_field("train.select_best_by", values["train.select_best_by"],
                         info=t("training.best_by.info"), elem_id="best-by")]
    return config, fields, name


def _run_view() -> list:
    """What the tab shows of a run (what `watch_run` returns): its progress line, its loss and
    accuracy figures, and its last output lines."""
    line = gr.Markdown(elem_id="progress-line")
    with gr.Row():
        loss = gr.Image(label=t("training.loss"), type="filepath", elem_id="loss-figure")
        accuracy = gr.Image(label=t("training.accuracy"), type="filepath")
    console = gr.Textbox(label=t("training.console"), lines=6, elem_id="run-console")
    return [line, loss, accuracy, console]


def watch_run(folders: AppFolders, runs: TrainingRuns, run_dir, language: str = "en"):
    """The shown run's progress line, figures and output."""
    if not run_dir:
        return say(language, "training.no_run"), None, None, ""
    run_dir = Path(run_dir)
    status = runs.status(run_dir)
    metrics, figures = None, [None, None]
    try:
        metrics = load_metrics(run_dir)
        paths = draw_run_figures(folders.scratch / "live" / run_dir.name, metrics)
        figures = [str(paths["loss"]), str(paths["accuracy"])]
    except Exception:  # no epoch recorded yet, or a file half-written: next tick
        pass
    return (progress_line(run_dir, status, language, metrics), *figures,
            status.get("console", ""))


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
    listing = bind(list_runs, runs)
    refresh.click(listing, None, chosen)
    compare.click(bind(compare_chosen, folders, runs), chosen, [figure, table, differences])
    return [(listing, None, chosen), (empty_table(comparison_headers), None, table),
            (empty_table(difference_headers), None, differences)]


def list_runs(runs: TrainingRuns, request: gr.Request):
    """On page load and Refresh: the runs to compare, those that recorded an epoch, newest
    first, each shown with its headline figures."""
    language, choices = language_of(request), []
    for run in runs_in(runs.output_dir):
        try:
            headline = run_headline(language, load_metrics(run.path))
        except (VitError, OSError, ValueError):  # being replaced: the name alone
            headline = ""
        choices.append((say(language, "compare.choice", run=run.name, scores=headline)
                        if headline else run.name, run.name))
    return gr.update(choices=choices)


@user_errors
def compare_chosen(folders: AppFolders, runs: TrainingRuns, names, request: gr.Request):
    """Compare: the chosen runs' curves overlaid, their final numbers, and the config keys on
    which they differ (what `tools/compare.py` reports)."""
    if not names:
        raise AppError("error.no_runs_picked")
    language = language_of(request)
    run_dirs = [runs.output_dir / name for name in names]
    result = compare_runs(run_dirs, folders.scratch / "compare")
    # a column no chosen run has a number in (the other task's) is left out, as
    # `tools/compare.py` leaves it out
    columns = shown_columns(result["rows"])
    rows = [[_cell(language, key, row[key]) for key in columns] for row in result["rows"]]
    differences = [[key, *map(str, values)]
                   for key, values in result["differences"].items()]
    nothing = [[say(language, "none")] + [""] * len(names)]
    return (str(result["figure"]),
            gr.update(value=rows, headers=comparison_headers(language, columns)),
            gr.update(value=differences or nothing,
                      headers=difference_headers(language, names)))


def _cell(language: str, column: str, value) -> str:
    """A comparison table cell as the terminal's, with `best_by` in words."""
    if column == "best_by" and value is not None:
        return figure_name(language, value)
    return format_cell(value)
