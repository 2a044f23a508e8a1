"""vit-paddle's fused CPU kernels (cpu_kernels.cc): attention, linear, layer norm, softmax, GELU
and stochastic depth, each with its gradient (registered with the op: Paddle's autograd runs it).

Paddle's own CPU kernels for these run several passes or operations, or one thread, where
PyTorch runs one fused, threaded kernel; they were most of the gap to PyTorch in eager
inference and training (docs/performance.md). The kernels are compiled once per machine with
Paddle's custom-operator toolchain (`paddle.utils.cpp_extension`, which needs a C++ compiler)
into `kernels_home()`, and later processes load the compiled library directly. Where they
cannot be built (no compiler, another platform) one line says so and the layers fall back to
Paddle's operators and their own Python gradients: the results are the same, only slower.
`VIT_PADDLE_CPU_KERNELS=0` turns them off.
"""

import contextlib
import functools
import hashlib
import os
import platform
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import paddle
from paddle.base.dygraph.base import in_sot_simulation_mode

from .. import cpu

SOURCE = Path(__file__).with_name("cpu_kernels.cc")
NAME = "vit_cpu_kernels"
OPT_OUT = "VIT_PADDLE_CPU_KERNELS"
HOME = "VIT_PADDLE_KERNELS"
# -fopenmp-simd: the `omp simd` loops vectorise without an OpenMP runtime of their own (the
# parallel parts run on Paddle's, see cpu_kernels.cc); -fno-trapping-math: comparisons
# vectorise too
COMPILE_FLAGS = ("-O3", "-fopenmp-simd", "-fno-trapping-math")
# the MKL Paddle ships, whose matrix products the attention and linear kernels call
MKL_LIBRARY = "libmklml_intel.so"
# where a failed build leaves the compiler's output; while it is there, processes do not retry
# (`python -m vit.models.cpu_kernels` does)
FAILED_BUILD = "build-failed.log"


def enabled() -> bool:
    """False when the user turned the kernels off with VIT_PADDLE_CPU_KERNELS=0."""
    return os.environ.get(OPT_OUT, "1").strip().lower() not in ("0", "false", "no", "off")


def kernels_home() -> Path:
    """Where compiled kernels are kept: `VIT_PADDLE_KERNELS`, else ~/.cache/vit-paddle/kernels."""
    return Path(os.environ.get(HOME) or Path.home() / ".cache" / "vit-paddle" / "kernels")


@functools.lru_cache(maxsize=None)
def mkl_library():
    """Paddle's own MKL library, or None where this Paddle build has none (then the kernels
    are built without the attention and linear ones, whose layers run Paddle's operations).
    Cached: `mkl_usable` asks on every Linear and attention call, and the file check took
    6.7 us."""
    library = Path(paddle.__file__).parent / "libs" / MKL_LIBRARY
    return library if library.exists() else None


def _build_flags():
    """The compiler's and the linker's flags: with Paddle's MKL where it has one."""
    mkl = mkl_library()
    if mkl is None:
        return list(COMPILE_FLAGS), []
    return [*COMPILE_FLAGS, "-DVIT_WITH_MKL"], [f"-L{mkl.parent}", f"-l:{mkl.name}",
                                                 f"-Wl,-rpath,{mkl.parent}"]


def library_path() -> Path:
    """The compiled library for this source, Paddle build, Python and machine type: a change to
    any of them gets a library of its own instead of loading a stale one."""
    key = hashlib.sha256("\n".join([
        SOURCE.read_text(encoding="utf-8"), paddle.__version__, paddle.version.commit,
        sys.version, platform.machine(), repr(_build_flags())]).encode()).hexdigest()[:16]
    return kernels_home() / key / f"{NAME}.so"


@functools.lru_cache(maxsize=None)
def available() -> bool:
    """Whether the kernels are loaded in this process, building them first where needed (once
    per machine, about half a minute); False, after one line on stderr, where they cannot be."""
    if not enabled():
        return False
    try:
        library = library_path()
        if (library.parent / FAILED_BUILD).exists():
            return False  # the note was printed by the process whose build failed
        if not library.exists():
            _build(library)
        with _quiet_toolchain_import():
            from paddle.utils.cpp_extension.extension_utils import (
                load_op_meta_info_and_register_op)

        load_op_meta_info_and_register_op(str(library))
        return True
    except Exception as error:  # a compiler's or loader's failure is not the user's to debug
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        print(f"vit: its fused CPU kernels are unavailable ({reason}); training and eager "
              f"inference run Paddle's slower kernels instead. To build them, install a C++ "
              f"compiler (g++) and run: python -m vit.models.cpu_kernels", file=sys.stderr)
        return False


def _build(library: Path) -> None:
    """Compile cpu_kernels.cc into `library`: in a scratch folder beside it, under a lock so
    that two processes do not build at once, and moved into place only when complete."""
    library.parent.mkdir(parents=True, exist_ok=True)
    with _locked(library.parent / "build.lock"):
        if library.exists():  # another process built it while this one waited
            return
        print(f"vit: compiling its fused CPU kernels, once per machine (10-30 s) into "
              f"{library.parent}", file=sys.stderr)
        scratch = Path(tempfile.mkdtemp(prefix="build-", dir=library.parent))
        log = scratch / "build.log"
        try:
            with _quiet_toolchain_import():
                from paddle.utils.cpp_extension import load

            compile_flags, link_flags = _build_flags()
            with _output_to(log):
                load(name=NAME, sources=[str(SOURCE)], extra_cxx_cflags=compile_flags,
                     extra_ldflags=link_flags, build_directory=str(scratch), verbose=True)
            built = scratch / NAME / f"{NAME}.so"
            if not built.exists():
                raise RuntimeError(f"the build made no {built.name}")
            os.replace(built, library)
        except Exception as error:
            kept = library.parent / FAILED_BUILD
            if log.exists():
                shutil.copyfile(log, kept)
            else:
                kept.write_text(f"{error}\n", encoding="utf-8")
            raise RuntimeError(f"compiling {SOURCE.name} failed, see {kept}") from error
        finally:
            shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def _quiet_toolchain_import():
    """Paddle's custom-operator toolchain warns on import, in every process, that ccache (a
    compiler cache, of no use to a build made once) is not installed."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "No ccache found")
        yield


@contextlib.contextmanager
def _locked(path: Path):
    import fcntl

    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def _output_to(log: Path):
    """Send this process's stdout and stderr, and those of the compiler it starts, to `log`:
    Paddle's toolchain prints its whole build. Python's own streams go there too, as they may
    be a caller's capture (the summary tool captures `paddle.summary`'s printout)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    with open(log, "w") as handle:
        os.dup2(handle.fileno(), 1)
        os.dup2(handle.fileno(), 2)
        try:
            with contextlib.redirect_stdout(handle), contextlib.redirect_stderr(handle):
                yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            for descriptor in saved:
                os.close(descriptor)


def usable(*tensors) -> bool:
    """Whether the kernels can take these tensors: eager mode, float32 on the CPU, kernels built.
    Not while `paddle.jit.to_static` traces the code (SOT reports dynamic mode then; a kernel
    would split its graph), nor in static graphs or exports, which need Paddle's own ops."""
    return (paddle.in_dynamic_mode() and not in_sot_simulation_mode() and all(
        t.place.is_cpu_place() and t.dtype == paddle.float32 for t in tensors) and available())


def _contiguous(tensor):
    return tensor if tensor.is_contiguous() else tensor.contiguous()


def _threads() -> int:
    return cpu.thread_count()


def layer_norm(x, weight, bias, epsilon: float):
    """Layer norm over the last axis of x (any leading shape)."""
    return paddle._C_ops._run_custom_op("vit_layer_norm", _contiguous(x), weight, bias,
                                        float(epsilon), _threads())[0]


def softmax(x):
    """Softmax over the last axis."""
    return paddle._C_ops._run_custom_op("vit_softmax", _contiguous(x), _threads())[0]


def mkl_usable(*tensors) -> bool:
    """Whether the kernels that call MKL (linear, attention) can take these tensors: `usable`,
    and built with Paddle's MKL."""
    return usable(*tensors) and mkl_library() is not None


def linear(x, weight, bias):
    """x W + b over the last axis of x. Its gradient computes d_x and d_weight only where they
    learn (as they do when this is called)."""
    return paddle._C_ops._run_custom_op("vit_linear", _contiguous(x), _contiguous(weight),
                                        bias, not x.stop_gradient, not weight.stop_gradient,
                                        _threads())[0]


def attention(qkv, heads: int, scale: float, with_gradient: bool):
    """softmax(scale q k^T) v for each of `heads` heads of qkv [B, N, 3 D] (queries, keys and
    values side by side, as the fused projection gives them), as [B, N, D]. With its gradient
    the op keeps the softmax [B, H, N, N] for the backward pass; without, it makes none."""
    if with_gradient:
        return paddle._C_ops._run_custom_op("vit_attention_keeping_softmax", _contiguous(qkv),
                                            int(heads), float(scale), _threads())[0]
    return paddle._C_ops._run_custom_op("vit_attention", _contiguous(qkv), int(heads),
                                        float(scale), _threads())[0]


def gelu(x):
    """The exact GELU, x * Phi(x)."""
    return paddle._C_ops._run_custom_op("vit_gelu", _contiguous(x), _threads())[0]


def drop_path(x, uniform, keep_prob: float):
    """Sample b of x [B, ...] times floor(keep_prob + uniform[b]) / keep_prob: stochastic
    depth's 1 / keep_prob for a kept sample, 0 for a dropped one."""
    return paddle._C_ops._run_custom_op("vit_drop_path", _contiguous(x), uniform,
                                        float(keep_prob), _threads())[0]


def main() -> int:
    """`python -m vit.models.cpu_kernels`: build the kernels where needed (again, after a
    failed build), load them and print the library's path."""
    (library_path().parent / FAILED_BUILD).unlink(missing_ok=True)
    if not available():
        return 1
    print(library_path())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
