"""The Training tab: start a run as its own process, watch its loss and accuracy live, stop
and resume it, and overlay earlier runs with the differences of their configs."""

import shlex
from pathlib import Path
from typing import List

import gradio as gr
import yaml

from ..config import load_config, shipped_configs
from ..engine.compare import compare_runs, draw_run_figures
from ..engine.run_log import load_metrics
from ..models import BASELINES, list_models
from .common import (DATA_FIELD_KEYS, AppFolders, changed_overrides, form_values, stamp,
                     user_errors)
from .runs import TrainingRuns


def progress_line(run_dir: Path, status: dict) -> str:
    """One line: state, epoch, step, images/s, time left (or the end message)."""
    state = status.get("state", "none")
    if state in ("starting", "preparing") or (state == "running" and "step" not in status):
        return f"**{run_dir.name}**: starting (reading the data)"
    if state == "none":
        return f"**{run_dir.name}**: no status yet"
    line = (f"**{run_dir.name}**: {state}, epoch {status.get('epoch', '?')}/"
            f"{status.get('epochs', '?')}, step {status.get('step', 0)}/{status.get('steps', '?')}")
    if status.get("images_per_s"):
        line += f", {status['images_per_s']:.0f} images/s"
    if state == "running" and status.get("seconds_left") is not None:
        line += f", about {status['seconds_left']:.0f} s left"
    if status.get("message"):
        line += f" — {status['message']}"
    if status.get("checkpoint"):
        line += f"\n\ncheckpoint: `{status['checkpoint']}`"
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


# The Training tab's settings, by the config key each field shows.
FORM_KEYS = ("model.name", "model.pretrained", "train.epochs", "optim.lr", "optim.warmup_epochs",
             "data.batch_size")


def training_tab(folders: AppFolders, runs: TrainingRuns, data_fields) -> dict:
    """Build the Training tab; it polls the run folder, so a reloaded page finds the run.
    Returns the handlers to run when a page loads (`load`: (function, inputs, outputs))."""
    configs = shipped_configs()
    gr.Markdown("### 3. Training\nA run is its own process writing to `output/<run>`: "
                "closing or reloading this page does not touch it. Stop saves a checkpoint; "
                "Resume continues from it. One run at a time. Choosing a config fills the "
                "fields (and the Data tab's) with its settings; what you change is sent as "
                "`-o` overrides.")
    config, fields, name = _settings(configs)
    with gr.Row():
        start = gr.Button("Start", variant="primary", elem_id="start-run")
        stop = gr.Button("Stop", variant="stop", elem_id="stop-run")
        resume = gr.Button("Resume the shown run", elem_id="resume-run")
    command = gr.Markdown(elem_id="train-command")
    current = gr.State()  # the run folder this page shows
    line = gr.Markdown(elem_id="progress-line")
    with gr.Row():
        loss = gr.Image(label="training loss", type="filepath", elem_id="loss-figure")
        accuracy = gr.Image(label="validation accuracy", type="filepath")
    console = gr.Textbox(label="the run's last output lines", lines=6, elem_id="run-console")
    watched = [line, loss, accuracy, console]
    keys = (*FORM_KEYS, *DATA_FIELD_KEYS)

    @user_errors
    def on_start(config_name, run_name, *values):
        chosen = load_config(configs[config_name])
        overrides = changed_overrides(chosen, keys, values)
        load_config(configs[config_name], overrides)  # a mistake is reported here, not later
        run_name = run_name.strip() or f"app-{stamp()}"
        run_dir = runs.start(configs[config_name], overrides, run_name)
        shown = runs.command(configs[config_name], runs.launch_overrides(overrides, run_name),
                             program=("python", "tools/train.py"))
        return (str(run_dir), f"The same run from a terminal:\n\n`{shlex.join(shown)}`\n\n"
                f"Dashboard: `visualdl --logdir {run_dir / 'vdl'} --disable-telemetry`",
                *watch_run(folders, runs, str(run_dir)))

    @user_errors
    def on_stop(run_dir):
        target = runs.active() or (Path(run_dir) if run_dir else None)
        if target is None:
            raise gr.Error("no run is training")
        gr.Info(runs.stop(target))
        return watch_run(folders, runs, str(target))

    @user_errors
    def on_resume(run_dir):
        if not run_dir:
            raise gr.Error("no run is shown: start one, or pick one below")
        return (str(runs.resume(run_dir)), *watch_run(folders, runs, run_dir))

    def attach(run_dir):
        """On page load and every tick: follow the active run when there is one."""
        active = runs.active()
        run_dir = str(active) if active else run_dir
        if not run_dir:
            recent = runs.finished_runs()
            run_dir = str(recent[0]) if recent else None
        return (run_dir, *watch_run(folders, runs, run_dir))

    config.change(lambda chosen: form_values(load_config(configs[chosen]), keys), config,
                  [*fields, *data_fields])
    start.click(on_start, [config, name, *fields, *data_fields], [current, command, *watched])
    stop.click(on_stop, current, watched)
    resume.click(on_resume, current, [current, *watched])
    timer = gr.Timer(2.0)
    timer.tick(attach, current, [current, *watched])
    listing, chosen = _comparison(folders, runs)
    return {"load": [(attach, current, [current, *watched]), (listing, None, chosen)]}


def _settings(configs: dict):
    """The config choice, the fields of FORM_KEYS showing the default config, and the run
    name."""
    values = dict(zip(FORM_KEYS, form_values(load_config(configs["default"]), FORM_KEYS)))
    with gr.Row():
        config = gr.Dropdown(list(configs), value="default", label="config",
                             elem_id="config-choice")
        fields = [
            gr.Dropdown(list_models() + list(BASELINES), value=values["model.name"],
                        label="model", elem_id="model-name"),
            gr.Textbox(value=values["model.pretrained"], label="pretrained (name, file, URL)",
                       placeholder="empty: from scratch", elem_id="pretrained"),
            gr.Number(value=values["train.epochs"], precision=0, label="epochs",
                      elem_id="epochs"),
            gr.Number(value=values["optim.lr"], label="learning rate", elem_id="lr"),
            gr.Number(value=values["optim.warmup_epochs"], label="warmup epochs",
                      elem_id="warmup"),
            gr.Number(value=values["data.batch_size"], precision=0, label="batch size",
                      elem_id="batch-size")]
        name = gr.Textbox(label="run name (empty: app-<date-time>)", elem_id="run-name")
    return config, fields, name


def watch_run(folders: AppFolders, runs: TrainingRuns, run_dir):
    """The shown run's progress line, figures and output."""
    if not run_dir:
        return "no run yet", None, None, ""
    run_dir = Path(run_dir)
    status = runs.status(run_dir)
    figures = [None, None]
    try:
        paths = draw_run_figures(folders.scratch / "live" / run_dir.name, load_metrics(run_dir))
        figures = [str(paths["loss"]), str(paths["accuracy"])]
    except Exception:  # no epoch recorded yet, or a file half-written: next tick
        pass
    return progress_line(run_dir, status), *figures, status.get("console", "")


def _comparison(folders: AppFolders, runs: TrainingRuns):
    gr.Markdown("#### Earlier runs\nOverlay the curves of runs in `output/` and see how their "
                "configs differ.")
    with gr.Row():
        chosen = gr.Dropdown([], multiselect=True, label="runs", elem_id="compare-runs")
        refresh = gr.Button("Refresh the list")
        compare = gr.Button("Compare", elem_id="compare")
    figure = gr.Image(label="comparison", type="filepath", elem_id="comparison-figure")
    table = gr.Dataframe(label="final numbers", interactive=False)
    differences = gr.Dataframe(label="config differences", interactive=False)

    def listing():
        return gr.update(choices=[p.name for p in runs.finished_runs()])

    @user_errors
    def on_compare(names):
        if not names:
            raise gr.Error("pick one or more runs")
        run_dirs = [runs.output_dir / name for name in names]
        result = compare_runs(run_dirs, folders.scratch / "compare")
        rows = [[str(row[key]) for key in row] for row in result["rows"]]
        return (str(result["figure"]), gr.update(value=rows, headers=list(result["rows"][0])),
                gr.update(value=config_differences(run_dirs) or [["(none)"] + [""] * len(names)],
                          headers=["key", *names]))

    refresh.click(listing, None, chosen)
    compare.click(on_compare, chosen, [figure, table, differences])
    return listing, chosen
