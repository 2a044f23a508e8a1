"""Building and running vit's fused CPU kernels: the build runs apart from the calling process
(whose output it leaves alone), a machine without a compiler gets one note and Paddle's kernels,
and the kernels run on the one thread count MKL runs on."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import paddle
import pytest

from vit.kernels import GELU, build


def test_the_fused_kernels_fall_back_with_one_note_when_they_cannot_be_built(tmp_path):
    """No working compiler: the first process says so in one line (plus the note that the
    build started) and trains on Paddle's kernels; the next ones do not try again and say
    nothing; `python -m vit.kernels` tries again and exits 1."""
    env = {**os.environ, "VIT_PADDLE_KERNELS": str(tmp_path), "CC": "false", "CXX": "false"}
    step = ("from vit.models import create_model; import paddle; "
            "model = create_model('ViT_tiny_patch4_16', num_classes=3); model.train(); "
            "model(paddle.randn([2, 3, 16, 16])).mean().backward(); print('trained')")
    first, second = (subprocess.run([sys.executable, "-c", step], env=env, capture_output=True,
                                    text=True, timeout=300) for _ in range(2))
    assert first.returncode == 0 and first.stdout.strip() == "trained", first.stderr
    notes = [line for line in first.stderr.splitlines() if line.startswith("vit: ")]
    assert len(notes) == 2 and "compiling" in notes[0], first.stderr
    assert "unavailable" in notes[1] and "build-failed.log" in notes[1], notes
    assert "Traceback" not in first.stderr
    assert second.returncode == 0 and second.stdout.strip() == "trained", second.stderr
    assert "vit: " not in second.stderr
    retry = subprocess.run([sys.executable, "-m", "vit.kernels"], env=env,
                           capture_output=True, text=True, timeout=300)
    assert retry.returncode == 1 and "unavailable" in retry.stderr


def test_train_num_threads_runs_the_kernels_and_mkl_on_that_many_threads(monkeypatch):
    """The one thread count: `train.num_threads=1` (the trainer's `setup_runtime`) sets
    Paddle's math to one thread, and every kernel op is given 1 too."""
    import vit
    from vit.engine.runtime import setup_runtime
    from vit.kernels import Linear

    if not build.available():
        pytest.skip("the fused CPU kernels are not built here")
    given, run = [], paddle._C_ops._run_custom_op

    def recording(op, *arguments):
        given.append((op, arguments[-1]))
        return run(op, *arguments)
    monkeypatch.setattr(paddle._C_ops, "_run_custom_op", recording)
    try:
        for threads in (1, 2):
            setup_runtime("cpu", threads)
            assert vit.cpu.math_threads() == threads
            assert vit.cpu._openmp_max_threads() == threads  # what MKL runs on
            layer = GELU() if build.mkl_library() is None else Linear(8, 8)
            layer(paddle.randn([4, 8]))
            assert given and given[-1][1] == threads, given
    finally:
        vit.configure_cpu()  # the suite's own settings back


def test_the_first_build_runs_apart_and_leaves_the_processs_output_alone(tmp_path):
    """A process that builds the kernels on first use keeps its own output: a thread printing
    throughout the build has every line on stdout, the compiler's output goes to the build
    log, and the process says in one line that it is compiling."""
    if not (shutil.which("c++") or shutil.which("g++")):
        pytest.skip("no C++ compiler to build the fused CPU kernels")
    script = """
import threading
from vit.kernels import build
done, printed = threading.Event(), []
def talk():
    while not done.is_set():
        print(f"line {len(printed)}", flush=True)
        printed.append(1)
        done.wait(0.01)
speaker = threading.Thread(target=talk)
speaker.start()
built = build.available()
done.set()
speaker.join()
print(f"printed {len(printed)}; built {built}; {build.library_path().parent}")
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            env={**os.environ, "VIT_PADDLE_KERNELS": str(tmp_path)}, timeout=600)
    assert result.returncode == 0, result.stderr
    *lines, summary = result.stdout.splitlines()
    count = int(summary.split()[1].rstrip(";"))
    assert "built True" in summary and count >= 20, summary  # it printed while compiling
    assert lines == [f"line {index}" for index in range(count)]
    assert result.stderr.count("vit: compiling its fused CPU kernels") == 1, result.stderr
    log = (Path(summary.split("; ")[-1]) / "build.log").read_text()
    assert "vit_cpu_kernels" in log and "line 0" not in log
