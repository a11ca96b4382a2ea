"""helpers.chunking.sources against a local HTTP server: no test here touches the network."""

from __future__ import annotations

import json
import socket
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pymupdf
import pytest

from helpers.chunking import sources
from helpers.chunking.sources import SourcesUnavailable, download_sources, is_valid_pdf, load_manifest


def _make_pdf(path: Path) -> None:
    doc = pymupdf.open()
    doc.new_page().insert_text((72, 72), "A tiny public-domain test document.")
    doc.save(path)
    doc.close()


class _CountingHandler(SimpleHTTPRequestHandler):
    requests: list[str] = []

    def do_GET(self):  # noqa: N802 (http.server's API)
        type(self).requests.append(self.path)
        super().do_GET()

    def log_message(self, *args):  # keep pytest output clean
        pass


@pytest.fixture
def server(tmp_path):
    """Serve a real PDF, an HTML page named .pdf and a truncated PDF on 127.0.0.1."""
    root = tmp_path / "www"
    root.mkdir()
    _make_pdf(root / "good.pdf")
    (root / "error-page.pdf").write_text("<html><body>Access denied</body></html>")
    (root / "truncated.pdf").write_bytes(b"%PDF-1.7\n% nothing else\n")
    handler = type("Handler", (_CountingHandler,), {"requests": []})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), partial(handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler
    httpd.shutdown()
    httpd.server_close()


def _dead_url() -> str:
    """A URL on a local port that nothing listens on: connection refused, as when offline."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/missing.pdf"


def _manifest(tmp_path: Path, entries: dict[str, list[str]]) -> Path:
    rows = [{"name": name, "file": f"{name}.pdf", "title": name.title(), "publisher": "Test",
             "urls": urls, "license": "public domain"} for name, urls in entries.items()]
    path = tmp_path / "sources.json"
    path.write_text(json.dumps({"sources": rows}))
    return path


def test_downloads_a_valid_pdf_once(server, tmp_path):
    base, handler = server
    manifest = _manifest(tmp_path, {"good": [f"{base}/good.pdf"]})
    dest = tmp_path / "downloads"
    paths = download_sources(dest, timeout=5, manifest=manifest, quiet=True)
    assert paths == [dest / "good.pdf"] and is_valid_pdf(paths[0])
    assert download_sources(dest, timeout=5, manifest=manifest, quiet=True) == paths
    assert handler.requests == ["/good.pdf"], "a file already present and valid is not fetched again"


def test_a_non_pdf_is_deleted_and_reported(server, tmp_path, capsys):
    base, _ = server
    manifest = _manifest(tmp_path, {"good": [f"{base}/good.pdf"], "html": [f"{base}/error-page.pdf"],
                                    "broken": [f"{base}/truncated.pdf"]})
    dest = tmp_path / "downloads"
    paths = download_sources(dest, timeout=5, manifest=manifest, quiet=True)
    assert [p.name for p in paths] == ["good.pdf"]
    assert sorted(p.name for p in dest.iterdir()) == ["good.pdf"], "nothing else kept, no temporary files"
    err = capsys.readouterr().err
    assert "html (" in err and "broken (" in err and "not return a readable PDF" in err
    assert "data/debian-faq" in err


def test_mirrors_are_tried_in_order(server, tmp_path):
    base, _ = server
    manifest = _manifest(tmp_path, {"doc": [_dead_url(), f"{base}/error-page.pdf", f"{base}/good.pdf"]})
    paths = download_sources(tmp_path / "d", timeout=5, manifest=manifest, quiet=True)
    assert [p.name for p in paths] == ["doc.pdf"] and is_valid_pdf(paths[0])


def test_an_invalid_file_on_disk_is_replaced(server, tmp_path):
    base, handler = server
    dest = tmp_path / "d"
    dest.mkdir()
    (dest / "good.pdf").write_text("half a download")
    manifest = _manifest(tmp_path, {"good": [f"{base}/good.pdf"]})
    assert is_valid_pdf(download_sources(dest, timeout=5, manifest=manifest, quiet=True)[0])
    assert handler.requests == ["/good.pdf"]


def test_offline_gives_one_clear_message(tmp_path):
    manifest = _manifest(tmp_path, {"a": [_dead_url()], "b": [_dead_url()]})
    with pytest.raises(SourcesUnavailable) as info:
        download_sources(tmp_path / "d", timeout=2, manifest=manifest, quiet=True)
    message = str(info.value)
    assert "cannot reach" in message and "a (" in message and "b (" in message
    assert "data/debian-faq/" in message and "upload" in message and "Drive" in message
    assert not any((tmp_path / "d").iterdir())


def test_command_line_reports_offline_without_a_traceback(tmp_path, monkeypatch, capsys):
    manifest = _manifest(tmp_path, {"a": [_dead_url()]})
    monkeypatch.setattr(sources, "download_sources",
                        partial(download_sources, tmp_path / "d", timeout=2, manifest=manifest))
    assert sources.main([]) == 1
    assert "data/debian-faq/" in capsys.readouterr().err


def test_unknown_names_are_rejected(tmp_path):
    manifest = _manifest(tmp_path, {"a": ["http://127.0.0.1:9/a.pdf"]})
    with pytest.raises(ValueError, match="Unknown source"):
        download_sources(tmp_path, names=["nope"], manifest=manifest)


def test_the_shipped_manifest_lists_the_course_documents():
    listed = {s.name: s for s in load_manifest()}
    assert {"ai-bill-of-rights", "nist-ai-600-1"} <= listed.keys()
    assert "https://nvlpubs.nist.gov/nistpubs/ai/NIST.AI.600-1.pdf" in listed["nist-ai-600-1"].urls
    blueprint = listed["ai-bill-of-rights"].urls
    assert any(u.endswith("/Blueprint-for-an-AI-Bill-of-Rights.pdf") for u in blueprint)
    for s in listed.values():
        assert s.title and s.publisher and s.file.endswith(".pdf") and "public domain" in s.license
        assert all(u.startswith("https://") for u in s.urls)
