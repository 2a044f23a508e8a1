"""Training runs started from the web app: each is its own process, `python -m vit.cli.train`,
writing to its run folder, so closing or reloading the page changes nothing.

The app only starts, stops and watches: the run's state is on disk (`status.json`,
`metrics.json`, `console.log`), which is how a reloaded page, or a restarted app, finds a
running run again. Stopping sends SIGINT, the trainer's own interrupt: it saves a checkpoint at
the next step and says where. One run at a time.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence

from ..engine.run_log import read_status
from ..files import write_text_atomic
from .i18n import AppError

ACTIVE_STATES = ("starting", "preparing", "running")
CONSOLE = "console.log"


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
        run_dir = self.output_dir / run_name
        if (run_dir / "metrics.json").exists() or (run_dir / "checkpoints").exists():
            raise AppError("error.run_exists", path=run_dir)
        return self._launch(run_dir, self.command(config_path,
                                                  self.launch_overrides(overrides, run_name)))

    def launch_overrides(self, overrides: Sequence[str], run_name: str) -> List[str]:
        """The overrides `start` passes: the given ones, then where the run folder goes."""
        return [*overrides, f"output.dir={self.output_dir}", f"output.run_name={run_name}"]

    def resume(self, run_dir) -> Path:
        """Continue a stopped run from its newest complete checkpoint, with its own config."""
        run_dir = Path(run_dir)
        active = self.active()
        if active is not None:
            raise AppError("error.run_active", run=active.name)
        if not (run_dir / "config.yaml").is_file():
            raise AppError("error.no_config", path=run_dir)
        return self._launch(run_dir, self.command(run_dir / "config.yaml", [
            f"train.resume={run_dir}", f"output.dir={run_dir.parent}",
            f"output.run_name={run_dir.name}"]))

    def _launch(self, run_dir: Path, command: List[str]) -> Path:
        run_dir.mkdir(parents=True, exist_ok=True)
        console = open(run_dir / CONSOLE, "ab")
        try:
            process = subprocess.Popen(command, stdout=console, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True,
                                       env={**os.environ, "PYTHONUNBUFFERED": "1"})
        finally:
            console.close()
        self.processes[run_dir] = process
        write_text_atomic(run_dir / "status.json", json_text({
            "state": "starting", "pid": process.pid, "updated": time.time(),
            "command": " ".join(command)}))
        return run_dir

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
            status.update(state="failed", message=_last_error(run_dir / CONSOLE))
        status["console"] = console_tail(run_dir)
        return status

    def active(self) -> Optional[Path]:
        """The run folder whose process is training now, if any (found on disk too, so a
        restarted app sees a run it did not start)."""
        candidates = set(self.processes) | set(self.output_dir.glob("*/status.json"))
        for path in sorted(candidates, key=str):
            run_dir = path.parent if path.name == "status.json" else path
            if self.status(run_dir)["state"] in ACTIVE_STATES:
                return run_dir
        return None

    def finished_runs(self) -> List[Path]:
        """Run folders with recorded epochs, newest first."""
        runs = [p.parent for p in self.output_dir.glob("*/metrics.json")]
        return sorted(runs, key=lambda p: (p / "metrics.json").stat().st_mtime, reverse=True)


def console_tail(run_dir, lines: int = 15) -> str:
    """The last lines the run printed."""
    try:
        text = (Path(run_dir) / CONSOLE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.rstrip().splitlines()[-lines:])


def _last_error(console: Path) -> str:
    tail = console_tail(console.parent, 40).splitlines()
    errors = [line for line in tail if line.startswith("error:") or "Error" in line]
    return errors[-1] if errors else "the training process ended without a result"


def json_text(record: dict) -> str:
    return json.dumps(record, indent=1) + "\n"
