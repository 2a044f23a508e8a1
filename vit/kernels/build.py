"""Compiling cpu_kernels.cc once per machine, and loading it into a process.

The kernels are compiled with Paddle's custom-operator toolchain (`paddle.utils.cpp_extension`,
which needs a C++ compiler) into `kernels_home()`, keyed by everything the library depends on;
later processes load the compiled library directly. The compiler runs in a child process whose
output goes to a log, so the calling process's own output (a web app's, a notebook's) is never
touched. `make install` builds them ahead (`python -m vit.kernels`); otherwise the first eager
CPU forward that can use them builds them. Where they cannot be built (no compiler, another
platform) one line says so and the layers run Paddle's operators instead: the same results,
only slower. `VIT_PADDLE_CPU_KERNELS=0` turns them off.
"""

import contextlib
import functools
import hashlib
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import paddle

from .. import cpu

SOURCE = Path(__file__).with_name("cpu_kernels.cc")
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder that holds `vit`
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
# (`python -m vit.kernels` does)
FAILED_BUILD = "build-failed.log"
BUILD_COMMAND = "python -m vit.kernels"


def enabled() -> bool:
    """False when the user turned the kernels off with VIT_PADDLE_CPU_KERNELS=0."""
    return cpu.switched_on(OPT_OUT)


def kernels_home() -> Path:
    """Where compiled kernels are kept: `VIT_PADDLE_KERNELS`, else ~/.cache/vit-paddle/kernels."""
    return Path(os.environ.get(HOME) or Path.home() / ".cache" / "vit-paddle" / "kernels")


@functools.lru_cache(maxsize=None)
def mkl_library():
    """Paddle's own MKL library, or None where this Paddle build has none (then the kernels
    are built without the attention and linear ones, whose layers run Paddle's operations).
    Cached: the layers ask on every Linear and attention call, and the file check took 6.7 us."""
    library = cpu.paddle_library(MKL_LIBRARY)
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


_LOADING = threading.Lock()
_ANSWER: list = []  # whether they loaded, once known


def available() -> bool:
    """Whether the kernels are loaded in this process, building them first where needed (once
    per machine, 10-30 s); False, after one line on stderr, where they cannot be. Asked from
    several threads at once (the web app's predictions), it loads them once; the lock is taken
    only until the answer is known, not on every layer's call."""
    if not _ANSWER:
        with _LOADING:
            if not _ANSWER:
                _ANSWER.append(_load())
    return _ANSWER[0]


def _load() -> bool:
    if not enabled():
        return False
    try:
        library = library_path()
        if (library.parent / FAILED_BUILD).exists():
            return False  # the note was printed by the process whose build failed
        if not library.exists():
            _build(library)
        with cpu.quiet_paddle_import():
            from paddle.utils.cpp_extension.extension_utils import (
                load_op_meta_info_and_register_op)

        load_op_meta_info_and_register_op(str(library))
        return True
    except Exception as error:  # a compiler's or loader's failure is not the user's to debug
        reason = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        print(f"vit: its fused CPU kernels are unavailable ({reason}); training and eager "
              f"inference run Paddle's slower kernels instead. To build them, install a C++ "
              f"compiler (g++) and run: {BUILD_COMMAND}", file=sys.stderr)
        return False


def _build(library: Path) -> None:
    """Compile cpu_kernels.cc into `library` in a child process (`compile_into`), under a lock
    so that two processes do not build at once; the library is moved into place only when
    complete, and a failed build's output is kept beside it."""
    library.parent.mkdir(parents=True, exist_ok=True)
    with _locked(library.parent / "build.lock"):
        if library.exists():  # another process built it while this one waited
            return
        if (library.parent / FAILED_BUILD).exists():  # or failed to, and said so
            raise RuntimeError(f"compiling {SOURCE.name} failed, see "
                               f"{library.parent / FAILED_BUILD}")
        print(f"vit: compiling its fused CPU kernels, once per machine (10-30 s) into "
              f"{library.parent}", file=sys.stderr, flush=True)
        log = library.parent / "build.log"
        with open(log, "w") as output:
            child = f"from {__name__} import compile_into; compile_into({str(library)!r})"
            # the folder holding this package first, however this process found it
            where = os.pathsep.join([str(PACKAGE_ROOT), os.environ.get("PYTHONPATH", "")])
            built = subprocess.run([sys.executable, "-c", child], stdout=output,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env={**os.environ, "PYTHONPATH": where.rstrip(os.pathsep)})
        if built.returncode != 0 or not library.exists():
            kept = library.parent / FAILED_BUILD
            shutil.copyfile(log, kept)
            raise RuntimeError(f"compiling {SOURCE.name} failed, see {kept}")


def compile_into(library) -> None:
    """Compile cpu_kernels.cc and move the result to `library`. Runs in the child process
    `_build` starts: Paddle's toolchain prints the whole build and loads what it built."""
    library = Path(library)
    scratch = Path(tempfile.mkdtemp(prefix="build-", dir=library.parent))
    try:
        with cpu.quiet_paddle_import():
            from paddle.utils.cpp_extension import load

        compile_flags, link_flags = _build_flags()
        load(name=NAME, sources=[str(SOURCE)], extra_cxx_cflags=compile_flags,
             extra_ldflags=link_flags, build_directory=str(scratch), verbose=True)
        built = scratch / NAME / f"{NAME}.so"
        if not built.exists():
            raise RuntimeError(f"the build made no {built.name}")
        os.replace(built, library)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


@contextlib.contextmanager
def _locked(path: Path):
    import fcntl

    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def main() -> int:
    """`python -m vit.kernels`: build the kernels where needed (again, after a failed build),
    load them and print the library's path; exit 1 where they cannot be built."""
    (library_path().parent / FAILED_BUILD).unlink(missing_ok=True)
    if not available():
        return 1
    print(library_path())
    return 0
