"""Training runs started from the web app: each is its own process, `python -m vit.cli.train`,
writing to its run folder, so closing or reloading the page changes nothing.

The app only starts, stops and watches: the run's state is in its run folder (`RunFolder`:
`status.json`, `metrics.json`, and `console.log`, what the process printed), which is how a
reloaded page, or a restarted app, finds a running run again. Stopping sends SIGINT, the
trainer's own interrupt: it saves a checkpoint at the next step and says where. One run at a
time.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..engine.run_folder import RunFolder
from ..engine.run_log import read_status
from ..files import write_text_atomic
from .i18n import AppError

ACTIVE_STATES = ("starting", "preparing", "running")


def _alive(pid: Optional[int]) -> bool:
    """Whether process `pid` runs (a finished child not yet reaped counts as gone)."""
    if not pid:
        return False
    try:
        os.kill(int(pid), 0)
    except (OSError, ValueError):
        return False
    try:
        with open(f"/proc/{int(pid)}/stat", encoding="utf-8") as handle:
            return handle.read().split(") ", 1)[1][:1] != "Z"
    except OSError:
        return True  # no /proc (macOS): kill(pid, 0) answered


class TrainingRuns:
    """The training processes of one app, over the run folders under `output_dir`."""

    def __init__(self, output_dir="output", python: str = sys.executable):
        self.output_dir = Path(output_dir)
        self.python = python
        self.processes: Dict[Path, subprocess.Popen] = {}

    def command(self, config_path, overrides: Sequence[str],
                program: Sequence[str] = ()) -> List[str]:
        """The training command for a config file and `-o` overrides (`program`: how to start
        the trainer, by default this Python running `vit.cli.train`)."""
        command = [*(program or (self.python, "-m", "vit.cli.train")), "-c", str(config_path)]
        for override in overrides:
            command += ["-o", override]
        return command

    def start(self, config_path, overrides: Sequence[str], run_name: str) -> Path:
        """Start a training process for run folder `output_dir/run_name`.

        Raises:
            AppError: a run is already going, or the folder already holds a run.
        """
        active = self.active()
        if active is not None:
            raise AppError("error.run_active", run=active.name)
        folder = RunFolder(self.output_dir / run_name)
        if folder.holds_run():
            raise AppError("error.run_exists", path=folder.path)
        return self._launch(folder, self.command(config_path,
                                                 self.launch_overrides(overrides, run_name)))

    def launch_overrides(self, overrides: Sequence[str], run_name: str) -> List[str]:
        """The overrides `start` passes: the given ones, then where the run folder goes."""
        return [*overrides, f"output.dir={self.output_dir}", f"output.run_name={run_name}"]

    def resume(self, run_dir) -> Path:
        """Continue a stopped run from its newest complete checkpoint, with its own config."""
        folder = RunFolder(run_dir)
        active = self.active()
        if active is not None:
            raise AppError("error.run_active", run=active.name)
        if not folder.config_file.is_file():
            raise AppError("error.no_config", path=folder.path)
        return self._launch(folder, self.command(folder.config_file, [
            f"train.resume={folder.path}", f"output.dir={folder.path.parent}",
            f"output.run_name={folder.name}"]))

    def _launch(self, folder: RunFolder, command: List[str]) -> Path:
        folder.path.mkdir(parents=True, exist_ok=True)
        console = open(folder.console_log, "ab")
        try:
            process = subprocess.Popen(command, stdout=console, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True,
                                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
        finally:
            console.close()
        self.processes[folder.path] = process
        write_text_atomic(folder.status_file, json_text({
            "state": "starting", "pid": process.pid, "updated": time.time(),
            "command": " ".join(command)}))
        return folder.path

    def stop(self, run_dir) -> str:
        """Ask the run to stop (SIGINT): it saves a checkpoint at its next step. Returns the
        run's name."""
        status = self.status(run_dir)
        if status["state"] not in ACTIVE_STATES:
            raise AppError("error.not_running", run=Path(run_dir).name, state=status["state"])
        os.kill(int(status["pid"]), signal.SIGINT)
        return Path(run_dir).name

    def status(self, run_dir) -> dict:
        """The run's `status.json`, corrected for a process that died without saying so."""
        run_dir = Path(run_dir)
        status = {"state": "none", **read_status(run_dir)}
        process = self.processes.get(run_dir)
        running = process.poll() is None if process is not None else _alive(status.get("pid"))
        if status["state"] in ACTIVE_STATES and not running:
            status.update(state="failed", message=_last_error(run_dir))
        status["console"] = console_tail(run_dir)
        return status

    def active(self) -> Optional[Path]:
        """The run folder whose process is training now, if any (found on disk too, so a
        restarted app sees a run it did not start)."""
        on_disk = {path for path in self.output_dir.glob("*")
                   if RunFolder(path).status_file.is_file()}
        for run_dir in sorted(set(self.processes) | on_disk, key=str):
            if self.status(run_dir)["state"] in ACTIVE_STATES:
                return run_dir
        return None


def console_tail(run_dir, lines: int = 15) -> str:
    """The last lines the run printed."""
    try:
        text = RunFolder(run_dir).console_log.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _last_error(run_dir) -> str:
    tail = console_tail(run_dir, 40).splitlines()
    errors = [line for line in tail if line.startswith("error:") or "Error" in line]
    return errors[-1] if errors else "the training process ended without a result"


def json_text(record: dict) -> str:
    return json.dumps(record, indent=1) + "\n"
