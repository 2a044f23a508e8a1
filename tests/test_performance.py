"""Fast where the process asks: what `import vit` sets (only what Paddle reads as it loads),
what `vit.configure_cpu()` and the tools set, that the user's own environment wins in either
import order, the opt-out, and the benchmark tool's table and JSON. Speed itself is measured by
tools/benchmark.py, not asserted here."""

import json
import os
import subprocess
import sys

from conftest import ROOT, assert_one_line_error, run_tool

PROBE = """
import ctypes, json, os, sys
first, configure = sys.argv[1], sys.argv[2] == "configure"
if first == "paddle":
    import paddle
import vit
import paddle
from vit import cpu
if configure:
    vit.configure_cpu()
omp = ctypes.CDLL(os.path.join(os.path.dirname(paddle.__file__), "libs", "libiomp5.so"))
libc = ctypes.CDLL(None)
class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks",
                "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]
libc.mallinfo2.restype, libc.malloc.restype = MallInfo2, ctypes.c_void_p
mapped_before = libc.mallinfo2().hblks  # blocks malloc took from the system with mmap
block = libc.malloc(64 << 20)  # a tensor of 16M floats
mapped_blocks = libc.mallinfo2().hblks - mapped_before
libc.free(ctypes.c_void_p(block))
print(json.dumps({"threads": omp.omp_get_max_threads(), "kernel_threads": cpu.math_threads(),
                  "mapped_blocks": mapped_blocks,
                  "free_kept": libc.mallinfo2().fordblks >= 64 << 20,
                  "stride": paddle.get_flags(["FLAGS_use_stride_kernel"])["FLAGS_use_stride_kernel"],
                  "mkl": os.environ.get("MKL_DEBUG_CPU_TYPE"), "vendor": cpu.cpu_vendor(),
                  "cores": cpu.available_cores(),
                  "warning_filters": [str(f[1]) for f in __import__("warnings").filters
                                      if f[1] is not None]}))
"""


def probe(first="paddle", configure=True, **env):
    """What a user's script sees after importing `first` (paddle or vit) and then the other,
    and calling `vit.configure_cpu()` if `configure`, with `env` added."""
    full = {k: v for k, v in os.environ.items()
            if k not in ("MKL_DEBUG_CPU_TYPE", "FLAGS_use_stride_kernel", "OMP_NUM_THREADS",
                         "VIT_PADDLE_CPU_DEFAULTS", "VIT_PADDLE_NUM_THREADS", "LD_PRELOAD")
            and not k.startswith("MALLOC_")}
    result = subprocess.run([sys.executable, "-c", PROBE, first,
                             "configure" if configure else "import"], capture_output=True,
                            text=True, env={**full, **env}, cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_importing_vit_changes_nothing_in_the_process_but_paddles_load_time_variables():
    """`import vit` sets only variables Paddle reads when it loads: the threads stay Paddle's
    one, glibc's malloc keeps its own behaviour (a 64 MiB block is mapped from the system),
    and no warnings filter is added; in either import order."""
    for first in ("paddle", "vit"):
        seen = probe(first, configure=False)
        assert (seen["threads"], seen["kernel_threads"]) == (1, 1), (first, seen)
        assert (seen["mapped_blocks"], seen["free_kept"]) == (1, False), (first, seen)
        assert not any("ccache" in f for f in seen["warning_filters"]), seen
        assert seen["mkl"] == ("5" if seen["vendor"] == "AuthenticAMD" else None)
    assert probe("vit", configure=False)["stride"] is False  # read by Paddle as it loads


def test_configure_cpu_takes_the_fast_settings_even_after_paddle():
    for first in ("paddle", "vit"):
        seen = probe(first)
        assert seen["threads"] == seen["kernel_threads"] == seen["cores"], (first, seen)
        assert seen["stride"] is False
        # a freed 64 MiB tensor stays in the heap for the next one (vit.cpu.apply_allocator)
        assert (seen["mapped_blocks"], seen["free_kept"]) == (0, True)


def test_the_users_environment_wins_in_either_order_and_the_defaults_can_be_turned_off():
    from vit.cpu import available_cores

    threads = available_cores() + 1  # neither Paddle's 1 nor the default, one per core
    for first in ("paddle", "vit"):
        mine = probe(first, FLAGS_use_stride_kernel="1", MKL_DEBUG_CPU_TYPE="4",
                     OMP_NUM_THREADS=str(threads), MALLOC_ARENA_MAX="2")
        assert (mine["threads"], mine["kernel_threads"], mine["stride"], mine["mkl"]) == \
            (threads, threads, True, "4"), (first, mine)
        assert mine["mapped_blocks"] == 1  # a MALLOC_* variable: glibc's own behaviour, untouched
        ones = probe(first, OMP_NUM_THREADS="1")  # the user's 1, not Paddle's
        assert (ones["threads"], ones["kernel_threads"]) == (1, 1), (first, ones)
        assert probe(first, VIT_PADDLE_NUM_THREADS="1")["threads"] == 1
        off = probe(first, VIT_PADDLE_CPU_DEFAULTS="0")
        assert (off["threads"], off["stride"], off["mkl"]) == (1, True, None)
        assert off["mapped_blocks"] == 1


def test_benchmark_tool_prints_the_table_with_pytorch_and_writes_json(tmp_path):
    result = run_tool("benchmark", "-m", "ViT_tiny_patch4_16", "--batch", "4", "--repeats", "1",
                      "--train-batch", "8", "--output", tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.startswith("path"))
    assert "vs PyTorch" in header and "GFLOP/s" in header and "same prec." in header
    for path in ("paddle eager", "paddle.jit.to_static", "paddle inference fp32",
                 "paddle inference bf16", "onnxruntime fp32", "onnxruntime int8",
                 "pytorch eager (transformers)", "pytorch eager int8 dynamic",
                 "paddle eager training", "pytorch eager training (transformers)",
                 "openvino fp32", "openvino fp32 (OpenVINO's own settings)", "openvino bf16",
                 "openvino int8 (NNCF)"):
        assert any(line.startswith(path) for line in lines), path
    fastest = [line for line in lines if line.startswith("fastest ")]
    assert any(line.startswith("fastest fp32 at batch 1: ") for line in fastest), fastest
    assert any(line.startswith("fastest int8 at batch 4: ") for line in fastest), fastest
    int8 = next(line for line in lines if line.startswith("onnxruntime int8"))
    assert int8.split()[-1].endswith("x"), int8  # against PyTorch's int8
    from vit.cpu import allocator_settings, vector_flags
    from vit.engine.paddle_predictor import native_bf16
    from vit.kernels import available

    if native_bf16():  # each precision against PyTorch at the same one
        assert any(line.startswith("pytorch eager bf16 autocast") for line in lines)
        bf16 = next(line for line in lines if line.startswith("paddle inference bf16"))
        assert bf16.split()[-1].endswith("x") and bf16.split()[-2].endswith("x"), bf16
    assert "matrix-product ceiling" in result.stdout
    record = json.loads(next(tmp_path.glob("ViT_tiny_patch4_16-*.json")).read_text())
    eager = [r for r in record["rows"] if r["path"] == "paddle eager"]
    assert [r["batch"] for r in eager] == [1, 4] and all(r["seconds"] > 0 for r in eager)
    assert record["matmul_gflops"]["numpy"] > 0 and record["threads"] >= 1
    assert record["cpu_flags"] == vector_flags()
    assert record["malloc"] == allocator_settings()
    assert record["fused_cpu_kernels"] is available()
    import openvino

    assert record["versions"]["openvino"] == openvino.__version__.split("-")[0]
    assert ("fused CPU kernels on" if available() else "fused CPU kernels off") in result.stdout
    assert "[1/" in result.stderr  # progress goes to stderr, the table to stdout


def test_the_benchmarks_eager_path_stays_eager_after_the_paddle_paths_are_built(tmp_path):
    import paddle

    from vit.engine.benchmark import _paths
    from vit.models import create_model

    model = create_model("ViT_tiny_patch4_16")
    model.eval()
    built = {path: build() for path, build in _paths(model, (16, 16), tmp_path).items()
             if not path.startswith(("onnxruntime", "openvino"))}  # they run a saved graph
    assert built["paddle eager"] is model
    # to_static given the Layer itself would have swapped its forward for the static graph
    assert type(model.forward).__name__ == "method", type(model.forward)
    images = paddle.randn([2, 3, 16, 16])
    with paddle.no_grad():
        eager, static = model(images).numpy(), built["paddle.jit.to_static"](images).numpy()
    assert abs(eager - static).max() < 1e-5


def test_benchmark_tool_names_an_unknown_model():
    assert_one_line_error(run_tool("benchmark", "-m", "ViT_base_patch16_38", "--no-training"),
                          "unknown model 'ViT_base_patch16_38'", "ViT_base_patch16_384")


def test_data_benchmark_times_each_worker_count_on_the_configured_pipeline(tmp_path):
    result = run_tool("benchmark_data", "--workers", "0", "1", "--epochs", "1", "-o",
                      "data.batch_size=100")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "digits: 1168 training images at 16x16, batch 100"
    # the first batch is not timed (worker start-up): 11 of the 12 batches are
    assert [line.split(":")[0].strip() for line in lines[1:]] == ["workers 0", "workers 1"]
    assert all("(1068 images in" in line for line in lines[1:]), lines
    assert_one_line_error(run_tool("benchmark_data", "-o", "data.source=folder", "-o",
                                   f"data.root={tmp_path / 'none'}"), "is not a folder")
