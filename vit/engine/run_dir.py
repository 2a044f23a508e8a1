"""The run folder: where one run's config, data report, logs, checkpoints and figures live."""

import datetime
from pathlib import Path

from ..config import Config, save_config


def run_dir_for(config: Config) -> Path:
    """`output.dir/output.run_name`, or `output.dir/<config name>-<date-time>` without a name."""
    name = config.output.run_name
    if not name:
        name = f"{config.name}-{datetime.datetime.now().strftime('%Y%m%d-%H%M%S')}"
    return Path(config.output.dir) / name


def create_run_dir(config: Config, path=None) -> Path:
    """Create the run folder (or reuse it) and record the resolved config in it first."""
    path = Path(path) if path else run_dir_for(config)
    path.mkdir(parents=True, exist_ok=True)
    save_config(config, path / "config.yaml")
    return path
