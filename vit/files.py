"""File habits every writer and checker here shares: hashing a file, writing one so that a
killed process never leaves a half-written file under the real name, and where the project
keeps what it downloads or compiles once per machine (`cache_home`)."""

import contextlib
import hashlib
import os
from pathlib import Path
from typing import Iterator

CHUNK = 1 << 20
HOME = "VIT_PADDLE_HOME"


def cache_home() -> Path:
    """The project's cache of downloaded weights and compiled models: `VIT_PADDLE_HOME`, else
    ~/.cache/vit-paddle."""
    return Path(os.environ.get(HOME) or Path.home() / ".cache" / "vit-paddle")


def file_digest(path, algorithm: str = "sha256") -> str:
    """Hex digest (`md5`, `sha256`, ...) of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


@contextlib.contextmanager
def atomic_path(path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; when the block ends without an error, rename it
    to `path` in one step (`os.replace`), otherwise delete it. The folder is created."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def write_text_atomic(path, text: str) -> Path:
    """Write a UTF-8 text file through a temporary file and an atomic rename."""
    with atomic_path(path) as temporary:
        temporary.write_text(text, encoding="utf-8")
    return Path(path)
