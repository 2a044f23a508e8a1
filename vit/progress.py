"""The callback that every long library function takes, so the tools (a progress bar) and the
web app (its progress line) follow the same work: `progress(stage, done, total)`."""

from typing import Callable, Optional

Progress = Optional[Callable[[str, int, int], None]]
