"""Saving and safely loading Paddle's `.pdparams` / `.pdopt` files.

Both are pickles, and unpickling an arbitrary file runs whatever code it names. `safe_load`
reads them with an unpickler that resolves only what `paddle.save` writes for tensors (NumPy's
array reconstruction) and plain containers; any other global is refused with one line before
anything in the file runs. `save` writes through a temporary file and a rename, so a killed
process never leaves a half-written file under the real name.
"""

import pickle
from pathlib import Path
from typing import Optional

import numpy as np

from .errors import CheckpointError
from .files import atomic_path

# (module, name) pairs a paddle.save file may name; all build data, none runs code.
_ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("builtins", "tuple"), ("builtins", "list"), ("builtins", "dict"), ("builtins", "set"),
    ("builtins", "frozenset"), ("builtins", "bytearray"), ("builtins", "complex"),
    ("collections", "OrderedDict"),
}


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, handle, path):
        super().__init__(handle)
        self.path = path

    def find_class(self, module, name):
        # numpy.dtypes holds the dtype classes NumPy 2 may name for an array's element type
        if (module, name) in _ALLOWED_GLOBALS or module == "numpy.dtypes":
            return super().find_class(module, name)
        raise CheckpointError(f"{self.path} asks to run {module}.{name} while loading; refused "
                              "(a weights file holds only tensors, numbers, strings, lists and "
                              "dicts)", "load only files from sources you trust, or convert "
                              "them to .safetensors")


def safe_load(path):
    """Load a `.pdparams` / `.pdopt` file as NumPy arrays, numbers, strings, lists and dicts.

    Tensors that `paddle.save` stored as (name, array) pairs come back as arrays.

    Raises:
        CheckpointError: the file is missing, is not a pickle, or names anything but data.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint '{path}' does not exist", "check the path")
    try:
        with open(path, "rb") as handle:
            data = _SafeUnpickler(handle, path).load()
    except CheckpointError:
        raise
    except Exception as error:  # truncated or foreign files fail in many ways inside pickle
        raise CheckpointError(f"cannot read {path} ({type(error).__name__}: {error})",
                              "the file is damaged or not a Paddle weights file") from None
    return _arrays(data)


def _arrays(value):
    if isinstance(value, tuple) and len(value) == 2 and isinstance(value[0], str) \
            and isinstance(value[1], np.ndarray):
        return value[1]  # paddle.save's reduced Tensor
    if isinstance(value, dict):
        return {key: _arrays(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_arrays(item) for item in value]
    return value


def save(obj, path) -> Path:
    """`paddle.save(obj, path)` through a temporary file and an atomic rename."""
    import paddle

    with atomic_path(path) as temporary:
        paddle.save(obj, str(temporary))
    return Path(path)


def save_safetensors(state: dict, path, metadata: Optional[dict] = None) -> Path:
    """Write a state dict (tensors or arrays) as `.safetensors`, with string `metadata`,
    through a temporary file and an atomic rename. Loading it can never run code."""
    from safetensors.numpy import save_file

    arrays = {key: np.ascontiguousarray(np.asarray(value.numpy() if hasattr(value, "numpy")
                                                   else value))
              for key, value in state.items()}
    with atomic_path(path) as temporary:
        save_file(arrays, str(temporary), metadata={k: str(v) for k, v in (metadata or {}).items()})
    return Path(path)


def load_safetensors(path):
    """Read a `.safetensors` file: (name -> NumPy array, metadata dict)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"weights file '{path}' does not exist", "check the path")
    try:
        with safe_open(str(path), framework="numpy") as handle:
            return {key: handle.get_tensor(key) for key in handle.keys()}, dict(handle.metadata() or {})
    except Exception as error:  # safetensors raises its own error types for damaged headers
        raise CheckpointError(f"cannot read {path} as safetensors ({error})",
                              "the file is damaged or not a .safetensors file") from None
