"""Acquisition over HTTP: a loopback server serves a real-format archive; good, corrupt and
truncated downloads."""

import hashlib
import http.server
import threading

import numpy as np
import pytest

from test_data_sources import cifar_archive
from vit.config import load_config
from vit.data import build_datasets
from vit.download import download_file, fetch
from vit.errors import DataError


class _Handler(http.server.BaseHTTPRequestHandler):
    files = {}  # path -> (bytes served, Content-Length announced)

    def do_GET(self):
        if self.path not in self.files:
            self.send_error(404)
            return
        payload, length = self.files[self.path]
        self.send_response(200)
        self.send_header("Content-Length", str(length))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    """A loopback HTTP server; set `server.files[path] = (bytes, length)` to serve."""
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    _Handler.files = {}
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    httpd.base = f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.files = _Handler.files
    yield httpd
    httpd.shutdown()


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def expect_cifar10_checksum(monkeypatch, checksum: str):
    """Register cifar10 with `checksum` in place of the official MD5, which belongs to the real
    170 MB file (the served archive is a small one in its format)."""
    import dataclasses

    from vit.data.sources import SOURCES

    official = SOURCES["cifar10"]
    small = dataclasses.replace(official.build.__self__, files=tuple(
        dataclasses.replace(remote, md5=checksum) for remote in official.build.__self__.files))
    monkeypatch.setitem(SOURCES, "cifar10", dataclasses.replace(official, build=small.build))


def test_cifar10_downloads_verifies_and_loads(tmp_path, server, monkeypatch):
    payload = cifar_archive(tmp_path / "served.tar.gz").read_bytes()
    server.files["/mirror/cifar-10-python.tar.gz"] = (payload, len(payload))
    expect_cifar10_checksum(monkeypatch, md5(payload))
    cache = tmp_path / "cache"
    config = load_config(None, ["data.source=cifar10", f"data.root={cache}",
                                f"data.url={server.base}/mirror", "data.val_fraction=0.25"])
    bundle = build_datasets(config.data)
    assert (cache / "cifar-10-python.tar.gz").read_bytes() == payload
    assert {k: len(v) for k, v in bundle.splits.items()} == {"train": 30, "test": 20, "val": 10}
    assert bundle.class_names[9] == "truck"
    server.files.clear()  # the cached, verified file is used without asking the server again
    assert len(build_datasets(config.data).splits["test"]) == 20


def test_corrupt_download_through_the_config_leaves_nothing(tmp_path, server, monkeypatch):
    payload = cifar_archive(tmp_path / "served.tar.gz").read_bytes()
    expect_cifar10_checksum(monkeypatch, md5(payload))
    damaged = bytearray(payload)
    damaged[len(damaged) // 2] ^= 0xFF
    server.files["/mirror/cifar-10-python.tar.gz"] = (bytes(damaged), len(damaged))
    cache = tmp_path / "cache"
    config = load_config(None, ["data.source=cifar10", f"data.root={cache}",
                                f"data.url={server.base}/mirror"])
    with pytest.raises(DataError, match="is corrupt"):
        build_datasets(config.data)
    assert not any(cache.iterdir())


def test_corrupt_download_is_detected_reported_and_not_used(tmp_path, server):
    good = b"the real archive bytes" * 100
    server.files["/f.tar.gz"] = (good[:-5] + b"XXXXX", len(good))
    dest = tmp_path / "f.tar.gz"
    with pytest.raises(DataError, match=r"download of .*/f.tar.gz is corrupt: md5 .* expected "
                                        + md5(good)):
        download_file(f"{server.base}/f.tar.gz", dest, md5(good))
    assert not dest.exists() and not list(tmp_path.iterdir())


def test_truncated_download_is_detected_reported_and_not_used(tmp_path, server):
    good = b"0123456789" * 1000
    server.files["/f.tar.gz"] = (good[:4000], len(good))  # the connection drops early
    dest = tmp_path / "f.tar.gz"
    with pytest.raises(DataError, match=r"truncated: 4,000 of 10,000 bytes"):
        download_file(f"{server.base}/f.tar.gz", dest, md5(good))
    assert not list(tmp_path.iterdir())


def test_cached_file_with_a_wrong_checksum_is_downloaded_again(tmp_path, server):
    good = b"fresh bytes" * 50
    server.files["/f.bin"] = (good, len(good))
    dest = tmp_path / "f.bin"
    dest.write_bytes(b"stale, altered copy")
    assert fetch(f"{server.base}/f.bin", dest, md5(good)).read_bytes() == good


def test_missing_file_without_download_permission_says_how(tmp_path):
    with pytest.raises(DataError, match="is missing and downloading is off; set data.download=true"):
        fetch("http://127.0.0.1:9/none", tmp_path / "x.bin", "0" * 32, download=False)


def test_unreachable_server_is_one_clear_error(tmp_path, server):
    with pytest.raises(DataError, match="cannot download .*/absent"):
        download_file(f"{server.base}/absent", tmp_path / "x", "0" * 64)


def test_sha256_checksums_are_accepted(tmp_path, server):
    data = b"abc" * 10
    server.files["/s"] = (data, len(data))
    path = download_file(f"{server.base}/s", tmp_path / "s", hashlib.sha256(data).hexdigest())
    assert path.read_bytes() == data
    assert np.frombuffer(path.read_bytes(), dtype=np.uint8).size == 30
