"""Shared fixtures: the repository paths and a way to run the command-line tools."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).resolve().parent


def pytest_sessionstart(session):
    """Take the fast CPU settings, as a script would (`vit.configure_cpu`: the in-process tests
    run on every core, and the tools the tests start do not inherit Paddle's
    OMP_NUM_THREADS=1), and build vit's fused CPU kernels before any test (10-30 s on a fresh
    machine, nothing after), into the one folder every test and every tool it starts then
    loads them from: tests that move HOME would otherwise build their own, and a tool's first
    build would add its note to output that a test checks line by line."""
    import vit
    from vit.kernels import build

    vit.configure_cpu()
    os.environ.setdefault(build.HOME, str(build.kernels_home()))
    build.available()


def run_tool(tool: str, *args, cwd=None, timeout=600, env=None):
    """Run `python tools/<tool>.py ARGS` as a user would; return the CompletedProcess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, str(ROOT / "tools" / f"{tool}.py"), *map(str, args)],
                          capture_output=True, text=True, cwd=cwd or ROOT, timeout=timeout,
                          env=full_env)


def assert_one_line_error(result, *fragments, after_log=False, table=False):
    """A user's mistake: exit code 2, one line on stderr naming the problem, no traceback.

    With `after_log` (a run that had started) the progress log may come first. With `table`
    the line is followed by an indented table of what differs (which tensors, which settings),
    returned as a list of rows of cells.
    """
    assert result.returncode == 2, (result.returncode, result.stdout, result.stderr)
    assert "Traceback" not in result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr
    start = errors[0]
    assert after_log or start == 0, result.stderr
    rest = lines[start + 1:]
    if table:
        assert len(rest) >= 2 and all(line.startswith("  ") for line in rest), result.stderr
    else:
        assert not rest, result.stderr
    for fragment in fragments:
        assert fragment in lines[start], lines[start]
    return [line.split() for line in rest] if table else lines[start]


# A quick run of the default config: a quarter of the digits' training split, 3 epochs.
QUICK_TRAINING = ["-o", "data.train_fraction=0.25", "-o", "data.batch_size=32",
                  "-o", "train.epochs=3", "-o", "optim.warmup_epochs=1"]


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory) -> Path:
    """The run folder of one quick training (QUICK_TRAINING), trained once for all the tests
    that need a checkpoint of it; a test that writes into a run folder copies it first."""
    out = tmp_path_factory.mktemp("quick")
    result = run_tool("train", *QUICK_TRAINING, "-o", f"output.dir={out}",
                      "-o", "output.run_name=run")
    assert result.returncode == 0, result.stderr
    return out / "run"


@pytest.fixture
def seed_table() -> str:
    return (FIXTURES / "vit_base_patch16_384.summary.txt").read_text(encoding="utf-8")


def write_image(path, mode="RGB", size=(20, 16), color=None, fmt=None, **save_args):
    """Write a small real image file and return its path."""
    import numpy as np
    from PIL import Image

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        pixels = np.full(size[::-1], 65535 if color is None else color, dtype=np.uint16)
        image = Image.fromarray(pixels)
    elif mode == "P":
        image = Image.new("RGB", size, color or (200, 30, 30)).convert("P", palette=Image.ADAPTIVE)
    else:
        image = Image.new(mode, size, color if color is not None else 128)
    image.save(path, format=fmt, **save_args)
    return path


def make_messy_folder(root):
    """The data-issue's folder: good images of every awkward kind, and the unusable ones.

    Returns (root, {usable paths}, {unusable paths}).
    """
    root = Path(root)
    good = {
        write_image(root / "cats" / "rgb.jpg", "RGB", color=(10, 20, 30)),
        write_image(root / "cats" / "cmyk.jpg", "CMYK", color=(0, 255, 255, 0)),
        write_image(root / "cats" / "gray.png", "L", color=77),
        write_image(root / "dogs" / "deep16.png", "I;16", color=65535),
        write_image(root / "dogs" / "rgba.png", "RGBA", color=(0, 0, 255, 128)),
        write_image(root / "dogs" / "palette.png", "P"),
        write_image(root / "dogs" / "fine.jpg", "RGB", color=(200, 200, 200)),
    }
    full = write_image(root / "cats" / "whole.jpg", "RGB", size=(64, 64), color=(1, 2, 3))
    truncated = root / "cats" / "truncated.jpg"
    truncated.write_bytes(full.read_bytes()[:300])
    full.unlink()
    text = root / "dogs" / "notes.jpg"
    text.write_text("this is not an image\n")
    (root / "birds").mkdir(parents=True)  # an empty class folder
    return root, {str(p) for p in good}, {str(truncated), str(text)}
