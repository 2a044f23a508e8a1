"""Downloading a file with its checksum verified before anything uses it.

The file is streamed to `<dest>.part`, its length is checked against the server's Content-Length
(a dropped connection leaves a short file) and its MD5 or SHA-256 against the expected one; only a
verified file is renamed to `dest`. A bad download is deleted and reported in one line.
"""

import hashlib
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Optional

from ..errors import DataError
from ..files import CHUNK, file_digest

log = logging.getLogger(__name__)

Progress = Optional[Callable[[int, Optional[int]], None]]


def checksum_algorithm(checksum: str) -> str:
    """MD5 for 32 hex digits (what Paddle publishes), SHA-256 for 64."""
    algorithms = {32: "md5", 64: "sha256"}
    if len(checksum) not in algorithms:
        raise DataError(f"checksum '{checksum}' is neither an MD5 nor a SHA-256 hex digest",
                        "give 32 or 64 hex digits")
    return algorithms[len(checksum)]


def verify_file(path, checksum: str) -> bool:
    """Whether the file at `path` has the expected MD5 / SHA-256 `checksum`."""
    return file_digest(path, checksum_algorithm(checksum)) == checksum.lower()


def download_file(url: str, dest, checksum: str, timeout: float = 60.0,
                  progress: Progress = None) -> Path:
    """Download `url` to `dest` and verify it; return `dest`.

    Args:
        url: http(s) or file URL.
        dest: where the verified file goes; its folder is created.
        checksum: expected MD5 (32 hex digits) or SHA-256 (64).
        timeout: seconds to wait for the server at each read.
        progress: called as progress(bytes_so_far, total_or_None) while downloading.

    Raises:
        DataError: the server cannot be reached, the file arrives short, or its checksum is
            wrong. Nothing is left at `dest` in these cases.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    algorithm = checksum_algorithm(checksum)
    digest = hashlib.new(algorithm)
    received = 0
    log.info("downloading %s -> %s", url, dest)
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(partial, "wb") as out:
            length = response.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            for chunk in iter(lambda: response.read(CHUNK), b""):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                if progress:
                    progress(received, total)
    except (urllib.error.URLError, OSError, ValueError) as error:
        partial.unlink(missing_ok=True)
        reason = getattr(error, "reason", error)
        raise DataError(f"cannot download {url} ({reason})",
                        "check the connection, set data.url to a mirror, or give data.archive "
                        "a local copy") from None
    if total is not None and received != total:
        partial.unlink(missing_ok=True)
        raise DataError(f"download of {url} is truncated: {received:,} of {total:,} bytes "
                        "arrived and the partial file was deleted", "run again to retry")
    actual = digest.hexdigest()
    if actual != checksum.lower():
        partial.unlink(missing_ok=True)
        raise DataError(f"download of {url} is corrupt: {algorithm} {actual}, expected "
                        f"{checksum.lower()}; the file was deleted",
                        "run again to retry, or check that data.url serves the official file")
    os.replace(partial, dest)
    return dest


def fetch(url: str, dest, checksum: str, download: bool = True, progress: Progress = None) -> Path:
    """Return `dest` if it already holds the verified file, else download it there.

    A cached file with the wrong checksum (an interrupted or altered copy) is replaced.
    """
    dest = Path(dest)
    if dest.is_file():
        if verify_file(dest, checksum):
            return dest
        log.warning("%s does not match its checksum; downloading it again", dest)
    if not download:
        state = "does not match its checksum" if dest.is_file() else "is missing"
        raise DataError(f"{dest} {state} and data.download is false",
                        "set data.download=true, or give data.archive a local copy")
    return download_file(url, dest, checksum, progress=progress)
