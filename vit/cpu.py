"""The CPU settings that make Paddle fast here (docs/performance.md says what and why), and
where each is taken.

Paddle's defaults leave most of a CPU idle: it pins its math to one thread, the MKL it ships
takes a slow code path on AMD processors, its stride kernels make `transpose` a view that the
next operation copies slowly, and every tensor of more than a few hundred kilobytes is memory
that glibc's malloc has just taken from the system, so each operation first waits for the
kernel to fault its output's pages in.

`import vit` sets only what Paddle reads once, when it loads its libraries: the environment
variables of `recommended_environment`, each where the user has not set it
(`apply_environment`). Everything else belongs to whoever owns the process and happens in
`configure`: the command-line tools (`run_cli`), the web app, the benchmark and the trainer call
it, and a notebook or script calls `vit.configure_cpu()`. A user's own environment always wins,
whether Paddle or vit was imported first; `VIT_PADDLE_CPU_DEFAULTS=0` turns all of it off.
Importing this module does not import Paddle.
"""

import contextlib
import ctypes
import functools
import os
import sys
import warnings
from pathlib import Path
from typing import Dict, Optional

OPT_OUT = "VIT_PADDLE_CPU_DEFAULTS"
THREADS = "VIT_PADDLE_NUM_THREADS"
_CHOSEN: Dict[str, str] = {}  # what apply_environment set (the rest was the user's)
# Paddle's import sets OMP_NUM_THREADS=1 where it is unset; before Paddle loads, a value is the
# user's (see users_omp_threads for the other order)
_PADDLE_WAS_LOADED = "paddle" in sys.modules
_OMP_THREADS_AT_IMPORT = os.environ.get("OMP_NUM_THREADS")
# Paddle's import warns that ccache is missing, which matters only to whoever compiles C++
CCACHE_WARNING = "No ccache found"


def switched_on(variable: str) -> bool:
    """Whether an on/off environment variable of vit's is on: it is, unless set to 0, false,
    no or off."""
    return os.environ.get(variable, "1").strip().lower() not in ("0", "false", "no", "off")


def enabled() -> bool:
    """False when the user opted out with VIT_PADDLE_CPU_DEFAULTS=0."""
    return switched_on(OPT_OUT)


def available_cores() -> int:
    """CPU cores this process may run on (its affinity mask, else all cores)."""
    cores = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    return len(cores) if cores else (os.cpu_count() or 1)


def cpu_vendor() -> str:
    """'AuthenticAMD', 'GenuineIntel', ... from /proc/cpuinfo; '' where it cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("vendor_id"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


# the instruction sets that decide which kernels are fast: /proc/cpuinfo flag -> name
VECTOR_FLAGS = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_bf16": "AVX512-BF16",
                "avx512_vnni": "AVX512-VNNI", "avx_vnni": "AVX-VNNI", "amx_bf16": "AMX-BF16",
                "amx_int8": "AMX-INT8"}


def vector_flags() -> list:
    """Which of `VECTOR_FLAGS` this CPU has, by name; [] where /proc/cpuinfo cannot be read."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    present = set(line.split(":", 1)[1].split())
                    return [name for flag, name in VECTOR_FLAGS.items() if flag in present]
    except OSError:
        pass
    return []


def recommended_environment() -> Dict[str, str]:
    """The variables `apply_environment` sets where the user has not."""
    settings = {
        # plain transpose kernels: the strided copy after a view was half of a small ViT's
        # time; training runs 1.7-2x faster without stride kernels
        "FLAGS_use_stride_kernel": "0",
    }
    if cpu_vendor() == "AuthenticAMD":
        # the MKL that Paddle ships runs its generic, slow kernels on AMD unless told that the
        # processor has AVX2 (5); ViT-B/16's forward pass is 2.5x faster with it
        settings["MKL_DEBUG_CPU_TYPE"] = "5"
    return settings


# glibc's mallopt parameters (malloc.h) and what apply_allocator sets them to
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
KEPT_FREE_BYTES = 1 << 30  # freed memory malloc keeps for reuse before returning it
_ALLOCATOR_CHOSEN: Dict[str, int] = {}


def _user_chose_allocator() -> bool:
    """A MALLOC_* variable, a glibc.malloc tunable, or another malloc preloaded."""
    return (any(key.startswith("MALLOC_") for key in os.environ)
            or "glibc.malloc" in os.environ.get("GLIBC_TUNABLES", "")
            or "malloc" in os.environ.get("LD_PRELOAD", ""))


def glibc_version() -> str:
    """'2.36' where this process runs on glibc, else ''."""
    try:
        name, _, version = (os.confstr("CS_GNU_LIBC_VERSION") or "").partition(" ")
    except (AttributeError, ValueError, OSError):
        return ""
    return version if name == "glibc" else ""


def apply_allocator() -> Dict[str, int]:
    """Make glibc's malloc reuse the memory of freed tensors instead of unmapping it
    (`configure` calls it; importing vit does not).

    By default glibc serves each block larger than its (adaptive) threshold with a fresh
    `mmap` and unmaps it when freed, and gives freed memory at the top of its heap back to the
    system beyond 128 KiB. An eager Paddle operation allocates its output, so on every call the
    kernel had to map and zero that output's pages again: an element-wise product of two
    [4160, 192] tensors took 1.2 ms, 0.06 ms in reused memory. With mmap turned off for blocks
    and up to `KEPT_FREE_BYTES` kept free, large tensors come from the heap and reuse what the
    previous step freed (a process keeps that much more memory mapped at most). glibc still
    falls back to mmap when the heap cannot grow. Returns what was set: nothing where the user
    chose their own allocator settings, opted out, or the C library is not glibc.
    """
    if _ALLOCATOR_CHOSEN or not enabled() or _user_chose_allocator() or not glibc_version():
        return allocator_settings()
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return {}
    settings = {"M_MMAP_MAX": (_M_MMAP_MAX, 0), "M_TRIM_THRESHOLD": (_M_TRIM_THRESHOLD,
                                                                  KEPT_FREE_BYTES)}
    for name, (parameter, value) in settings.items():
        if mallopt(ctypes.c_int(parameter), ctypes.c_int(value)) == 1:
            _ALLOCATOR_CHOSEN[name] = value
    return allocator_settings()


def allocator_settings() -> Dict[str, int]:
    """The mallopt parameters `apply_allocator` set in this process, by name ({} for none)."""
    return dict(_ALLOCATOR_CHOSEN)


def apply_environment() -> Dict[str, str]:
    """Before Paddle loads (`import vit` calls it): set the recommended variables the user has
    not set; return them."""
    if not enabled():
        return {}
    chosen = {key: value for key, value in recommended_environment().items()
              if key not in os.environ}
    os.environ.update(chosen)
    _CHOSEN.update(chosen)
    return chosen


@contextlib.contextmanager
def quiet_paddle_import():
    """Import Paddle (or its custom-operator toolchain) inside this block without its warning
    that ccache is missing; the filter ends with the block."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=CCACHE_WARNING, category=UserWarning)
        yield


def _initial_environment() -> Dict[str, str]:
    """The environment this process started with (Linux's /proc/self/environ, which later
    changes such as Paddle's do not touch); {} where it cannot be read."""
    try:
        with open("/proc/self/environ", "rb") as handle:
            entries = handle.read().split(b"\0")
    except OSError:
        return {}
    pairs = (entry.decode(errors="replace").partition("=") for entry in entries if entry)
    return {key: value for key, _, value in pairs}


def users_omp_threads() -> Optional[str]:
    """OMP_NUM_THREADS as the user set it, or None. Paddle's import sets it to "1" where it is
    unset, and writes no other value: any other is the user's. A "1" is the user's if it was
    there before Paddle loaded (when vit loaded first), or if the process started with it."""
    value = os.environ.get("OMP_NUM_THREADS")
    if value is not None and value != "1":
        return value
    if not _PADDLE_WAS_LOADED:
        return _OMP_THREADS_AT_IMPORT
    return value if "OMP_NUM_THREADS" in _initial_environment() else None


def thread_count(requested: int = 0) -> int:
    """Math threads to use: `requested`, else VIT_PADDLE_NUM_THREADS, else the user's own
    OMP_NUM_THREADS, else one per available core."""
    if requested:
        return int(requested)
    for value in (os.environ.get(THREADS), users_omp_threads()):
        if value and value.strip().isdigit() and int(value) > 0:
            return int(value)
    return available_cores()


_APPLIED_THREADS: list = []  # the count configure last set, if it set one


def configure(num_threads: int = 0) -> Optional[int]:
    """Take the fast CPU settings in this process, once Paddle is loaded: its math threads
    (`thread_count(num_threads)`; Paddle pins itself to one), the allocator
    (`apply_allocator`), and the stride-kernel flag where Paddle was imported before `vit` and
    so missed the environment variable. Called by the entry points that own the process; in a
    notebook or script, `vit.configure_cpu()`.

    Returns:
        the thread count, or None when the user opted out and asked for no count.
    """
    if not num_threads and not enabled():
        return None
    import paddle

    apply_allocator()
    if "FLAGS_use_stride_kernel" in _CHOSEN:
        paddle.set_flags({"FLAGS_use_stride_kernel": False})
    if users_omp_threads() is None:
        # Paddle's "1", not the user's: keep it from pinning the processes this one starts
        # (the web app's training runs, the tests' tools) to one thread
        os.environ.pop("OMP_NUM_THREADS", None)
    count = thread_count(num_threads)
    paddle.base.core.set_num_threads(count)
    _APPLIED_THREADS[:] = [count]
    return count


def math_threads() -> int:
    """The thread count Paddle's math runs on: what `configure` set, else that of Paddle's
    OpenMP runtime (one, unless the user set more). vit's kernels run on the same count."""
    if _APPLIED_THREADS:
        return _APPLIED_THREADS[0]
    return _openmp_max_threads()


def _openmp_max_threads() -> int:
    runtime = _openmp_runtime()
    return max(1, int(runtime.omp_get_max_threads())) if runtime is not None else 1


@functools.lru_cache(maxsize=None)
def _openmp_runtime():
    """Paddle's OpenMP runtime (libiomp5, which its MKL runs on), or None where it has none."""
    try:
        return ctypes.CDLL(str(paddle_library("libiomp5.so")))
    except OSError:
        return None


def paddle_library(name: str) -> Path:
    """Where Paddle keeps the shared library `name` it ships (its MKL, its OpenMP runtime)."""
    import paddle

    return Path(paddle.__file__).parent / "libs" / name


def restore_runtime_threads() -> None:
    """Set Paddle's math threads back to what `configure` chose. A Paddle Inference
    predictor's run changes them: afterwards an eager matrix product of [1088, 64] x
    [64, 192] took 0.125 ms against 0.065 ms before, as on one thread, and the default model's
    training step 24 ms against 20. `PaddlePredictor` calls this after each run."""
    if _APPLIED_THREADS:
        import paddle

        paddle.base.core.set_num_threads(_APPLIED_THREADS[0])
