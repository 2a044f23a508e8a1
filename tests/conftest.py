"""Shared fixtures: the repository paths and a way to run the command-line tools."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent


def run_tool(tool: str, *args, cwd=None, timeout=600, env=None):
    """Run `python tools/<tool>.py ARGS` as a user would; return the CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / "tools" / f"{tool}.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd or ROOT, timeout=timeout,
                          env=full_env)


def assert_one_line_error(result, *fragments):
    """A user's mistake: exit code 2, one line on stderr naming the problem, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def seed_table() -> str:
    return (FIXTURES / "vit_base_patch16_384.summary.txt").read_text(encoding="utf-8")
