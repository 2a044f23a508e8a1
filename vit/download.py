"""Downloading a file with its checksum verified before anything uses it: the one downloader of
the data sets and of the published weights.

The file is streamed to `<dest>.part`, its length is checked against the server's Content-Length
(a dropped connection leaves a short file) and its MD5 or SHA-256 against the expected one; only a
verified file is renamed to `dest`. A bad download is deleted and reported in one line.

Where no checksum is published, the SHA-256 of the first download is recorded beside the file
(`<dest>.sha256`) and every later use checks the file against it (`fetch`), so a cached file that
was truncated or changed is never used silently.
"""

import hashlib
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Optional

from .errors import DataError, param
from .files import CHUNK, file_digest, write_text_atomic

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


RETRY_HINT = (f"check the connection, set {param('data.url')} to a mirror, or give "
              f"{param('data.archive')} a local copy")


def download_file(url: str, dest, checksum: Optional[str], timeout: float = 60.0,
                  progress: Progress = None, hint: str = RETRY_HINT) -> Path:
    """Download `url` to `dest` and verify it; return `dest`.

    Args:
        url: http(s) or file URL.
        dest: where the verified file goes; its folder is created.
        checksum: expected MD5 (32 hex digits) or SHA-256 (64); None records the SHA-256 of
            this download as `<dest>.sha256`, for `fetch` to check later uses against.
        timeout: seconds to wait for the server at each read.
        progress: called as progress(bytes_so_far, total_or_None) while downloading.
        hint: what to do when the server cannot be reached (said after the reason).

    Raises:
        DataError: the server cannot be reached, the file arrives short, or its checksum is
            wrong. Nothing is left at `dest` in these cases.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".part")
    algorithm = checksum_algorithm(checksum) if checksum else "sha256"
    log.info("downloading %s -> %s", url, dest)
    actual = _receive(url, partial, algorithm, timeout, progress, hint)
    if checksum is None:
        write_text_atomic(recorded_digest_path(dest), actual + "\n")
    elif actual != checksum.lower():
        partial.unlink(missing_ok=True)
        raise DataError(f"download of {url} is corrupt: {algorithm} {actual}, expected "
                        f"{checksum.lower()}; the file was deleted", "run again to retry, or "
                        + (hint or f"check that {param('data.url')} serves the official file"))
    os.replace(partial, dest)
    return dest


def _receive(url: str, partial: Path, algorithm: str, timeout: float, progress: Progress,
             hint: str) -> str:
    """Stream `url` into `partial` and return its `algorithm` hex digest.

    Raises:
        DataError: the server cannot be reached, or fewer bytes arrived than it announced;
            `partial` is deleted.
    """
    digest = hashlib.new(algorithm)
    received, total = 0, None
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
        raise DataError(f"cannot download {url} ({reason})", hint) from None
    if total is not None and received != total:
        partial.unlink(missing_ok=True)
        raise DataError(f"download of {url} is truncated: {received:,} of {total:,} bytes "
                        "arrived and the partial file was deleted", "run again to retry")
    return digest.hexdigest()


def recorded_digest_path(path) -> Path:
    """Where the SHA-256 of a file downloaded without a published checksum is kept."""
    path = Path(path)
    return path.with_name(path.name + ".sha256")


def expected_checksum(path, checksum: Optional[str]) -> Optional[str]:
    """`checksum`, or the SHA-256 recorded when the file at `path` was downloaded (None when
    neither is known)."""
    if checksum:
        return checksum
    try:
        return recorded_digest_path(path).read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def fetch(url: str, dest, checksum: Optional[str], download: bool = True,
          progress: Progress = None, hint: str = RETRY_HINT,
          offline_hint: str = (f"set {param('data.download', 'true')}, or give "
                               f"{param('data.archive')} a local copy")) -> Path:
    """Return `dest` if it already holds the verified file, else download it there.

    A cached file with the wrong checksum (an interrupted or altered copy) is replaced. With no
    published checksum, a file found there without a recorded one (placed by hand) is taken as
    it is and its SHA-256 recorded, so that from then on it is checked like a download.
    """
    dest = Path(dest)
    if dest.is_file():
        known = expected_checksum(dest, checksum)
        if known is None:
            write_text_atomic(recorded_digest_path(dest), file_digest(dest) + "\n")
            return dest
        if verify_file(dest, known):
            return dest
        log.warning("%s does not match its checksum; downloading it again", dest)
    if not download:
        state = "does not match its checksum" if dest.is_file() else "is missing"
        raise DataError(f"{dest} {state} and downloading is off", offline_hint)
    return download_file(url, dest, checksum, progress=progress, hint=hint)
