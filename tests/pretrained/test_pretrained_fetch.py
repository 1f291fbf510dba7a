"""Weights fetched by URL: checksum verified, atomic, cached, clear offline error."""

import hashlib
import http.server
import socket
import threading

import pytest

import stgeo
from stgeo.errors import DownloadError, ModelFileError
from stgeo.pretrained import fetch, package, register_pretrained
from stgeo.pretrained.fetch import cached_path
from stgeo.pretrained.registry import PRETRAINED


@pytest.fixture
def cache(tmp_path):
    with stgeo.set_options(cache_dir=str(tmp_path / "cache")):
        yield tmp_path / "cache"


def test_file_url_downloaded_verified_and_cached(tmp_path, cache):
    src = tmp_path / "w.safetensors"
    src.write_bytes(b"some weights")
    sha = hashlib.sha256(b"some weights").hexdigest()
    p = fetch(src.as_uri(), sha, name="demo")
    assert p == cached_path("demo", sha) and p.read_bytes() == b"some weights"
    assert str(p).startswith(str(cache))
    src.unlink()  # the cached copy is used from now on
    assert fetch(src.as_uri(), sha, name="demo").read_bytes() == b"some weights"
    assert [f.name for f in p.parent.iterdir()] == [p.name]  # no temporary left


def test_checksum_mismatch_refused_and_not_kept(tmp_path, cache):
    src = tmp_path / "w.safetensors"
    src.write_bytes(b"tampered")
    want = hashlib.sha256(b"original").hexdigest()
    with pytest.raises(ModelFileError, match=f"expected {want}: refused"):
        fetch(src.as_uri(), want, name="demo")
    assert not cached_path("demo", want).exists()
    assert list(cached_path("demo", want).parent.iterdir()) == []


def test_damaged_cache_is_refused(tmp_path, cache):
    sha = hashlib.sha256(b"good").hexdigest()
    p = cached_path("demo", sha)
    p.parent.mkdir(parents=True)
    p.write_bytes(b"bad")
    with pytest.raises(ModelFileError, match="damaged.*delete the file"):
        fetch("file:///nowhere", sha, name="demo")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_offline_error_names_the_url_and_the_manual_path(cache):
    url = f"http://127.0.0.1:{_closed_port()}/model.safetensors"
    sha = 64 * "a"
    with pytest.raises(DownloadError) as e:
        fetch(url, sha, name="demo", timeout=5)
    msg = str(e.value)
    assert url in msg and str(cached_path("demo", sha)) in msg and sha in msg
    assert "sha256sum" in msg


def test_remote_artefact_over_http_end_to_end(tmp_path, cache, tiny_simvp, storms):
    """An artefact published at a URL (a local http server) is fetched, verified, used."""
    card = package(tiny_simvp, name="tiny-remote", out=tmp_path / "pub", url="http://x/")
    served = tmp_path / "pub"

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **kw):
            super().__init__(*a, directory=str(served), **kw)

        def log_message(self, *a):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/model.safetensors"
        remote = stgeo.pretrained.PretrainedCard.from_dict(
            {**card.to_dict(), "files": {"url": url, "sha256": card.files["sha256"]}}
        )
        register_pretrained(remote)
        fc = stgeo.forecast(storms, "tiny-remote", lead_steps=1, progress=False)
        assert fc.attrs["pretrained"] == "tiny-remote"
        assert cached_path("tiny-remote", card.files["sha256"]).is_file()
        bad = stgeo.pretrained.PretrainedCard.from_dict(
            {
                **remote.to_dict(),
                "name": "tiny-remote-bad",
                "files": {"url": url, "sha256": 64 * "0"},
            }
        )
        register_pretrained(bad)
        with pytest.raises(ModelFileError, match="refused"):
            stgeo.pretrained.get("tiny-remote-bad")
    finally:
        server.shutdown()
        for n in ("tiny-remote", "tiny-remote-bad"):
            if n in PRETRAINED:
                PRETRAINED.remove(n)
