"""The run folder: where one run's config, data report, logs, checkpoints and figures live.

`RunFolder` is the one place that knows the folder's layout and its rules: which file holds
what, which checkpoint is the best, when a folder already holds a run, how to open its
dashboard. The trainer, the tools and the web app ask it rather than joining paths themselves.
"""

import datetime
import json
from pathlib import Path
from typing import List, Optional

from ..config import Config, save_config
from ..errors import VitError, param


class RunFolder:
    """One run's folder (it need not exist yet).

    Layout: `config.yaml` (the resolved config, written first), `stats.json` (the data
    set's statistics), `metrics.json` (RunLog), `status.json` (RunStatus), `train.log`,
    `console.log` (a process the web app started), `vdl/` (VisualDL), `checkpoints/`
    (TAG.pdparams/.pdopt/.json; `best` is the best by val top-1), `figures/` (the data report's
    and the training curves), and `export/` once the model is exported.
    """

    CONFIG = "config.yaml"
    STATS = "stats.json"
    METRICS = "metrics.json"
    STATUS = "status.json"
    TRAIN_LOG = "train.log"
    CONSOLE = "console.log"
    CHECKPOINTS = "checkpoints"
    VISUALDL = "vdl"
    FIGURES = "figures"
    EXPORT = "export"
    BEST = "best"

    def __init__(self, path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    @property
    def name(self) -> str:
        return self.path.name

    @classmethod
    def for_config(cls, config: Config) -> "RunFolder":
        """`output.dir/output.run_name`, or `output.dir/<config name>-<date-time>` without a
        name."""
        name = config.output.run_name
        if not name:
            name = f"{config.name}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
        return cls(Path(config.output.dir) / name)

    @classmethod
    def holding(cls, checkpoint) -> Optional["RunFolder"]:
        """The run folder a checkpoint file lies in (in its `checkpoints/`), or None."""
        checkpoint = Path(checkpoint)
        if checkpoint.parent.name == cls.CHECKPOINTS:
            return cls(checkpoint.parent.parent)
        return None

    # --- the files ----------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.path / self.CONFIG

    @property
    def stats_file(self) -> Path:
        return self.path / self.STATS

    @property
    def metrics_file(self) -> Path:
        return self.path / self.METRICS

    @property
    def status_file(self) -> Path:
        return self.path / self.STATUS

    @property
    def train_log(self) -> Path:
        return self.path / self.TRAIN_LOG

    @property
    def console_log(self) -> Path:
        return self.path / self.CONSOLE

    @property
    def checkpoints(self) -> Path:
        return self.path / self.CHECKPOINTS

    @property
    def visualdl_dir(self) -> Path:
        return self.path / self.VISUALDL

    @property
    def figures(self) -> Path:
        return self.path / self.FIGURES

    def checkpoint(self, tag: str) -> Path:
        """The `.pdparams` of checkpoint `tag` (`best`, `epoch_003`, `interrupted`)."""
        return self.checkpoints / f"{tag}.pdparams"

    @property
    def best_checkpoint(self) -> Path:
        return self.checkpoint(self.BEST)

    # --- the rules ----------------------------------------------------------------------------
    def holds_run(self) -> bool:
        """Whether a run has trained here (recorded an epoch or written a checkpoint)."""
        return self.metrics_file.exists() or self.checkpoints.exists()

    def has_finished(self) -> bool:
        """Whether a run here got as far as its test evaluation."""
        try:
            return "test" in json.loads(self.metrics_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False

    def refuse_if_taken(self):
        """Raises VitError when a run has already trained here (a new run would mix its files
        with the old one's)."""
        if self.holds_run():
            raise VitError(f"{self.path} already holds a run",
                           f"choose another {param('output.run_name')}, or continue it with "
                           f"{param('train.resume', str(self.path))}")

    def create(self, config: Config):
        """Create the folder (or reuse it) and record the resolved config in it first."""
        self.path.mkdir(parents=True, exist_ok=True)
        save_config(config, self.config_file)

    @property
    def visualdl_command(self) -> str:
        """The command that opens the run's live dashboard. VisualDL's page loads Baidu's
        analytics script and its server checks for updates unless told not to."""
        return f"visualdl --logdir {self.visualdl_dir} --disable-telemetry"


def runs_in(output_dir) -> List[RunFolder]:
    """The run folders under `output_dir` that recorded an epoch, newest first."""
    folders = [RunFolder(path.parent) for path in Path(output_dir).glob(f"*/{RunFolder.METRICS}")]
    return sorted(folders, key=lambda run: run.metrics_file.stat().st_mtime, reverse=True)


def best_checkpoints_in(output_dir) -> List[Path]:
    """The best checkpoint of each run folder directly under `output_dir`."""
    return sorted(Path(output_dir).glob(f"*/{RunFolder.CHECKPOINTS}/{RunFolder.BEST}.pdparams"))


def weights_in(path) -> Path:
    """A checkpoint's `.pdparams`, given as such, or the best checkpoint of a run folder or of
    a folder of checkpoints."""
    path = Path(path)
    if not path.is_dir():
        return path
    if (path / RunFolder.CHECKPOINTS).is_dir():
        return RunFolder(path).best_checkpoint
    return path / f"{RunFolder.BEST}.pdparams"
