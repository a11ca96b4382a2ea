"""Fetch the real public-domain PDFs listed in ``data/sources.json``.

Optional: the course runs start to finish on the bundled course corpus (``data/debian-faq``). These
downloads give a learner a larger, real corpus when the network is there::

    from helpers.chunking.sources import download_sources
    paths = download_sources()                       # all of them, into data/downloads/
    paths = download_sources(names=["nist-ai-600-1"])

or ``python -m helpers.chunking.sources [name ...]``. Files already present and readable are not fetched
again; what arrives is checked to be a PDF that opens with at least one page, and is written atomically.
"""

from __future__ import annotations

import json
import logging
import sys
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from helpers.core.config import DATA_DIR
from helpers.core.console import show_messages
from helpers.core.io import atomic_path

logger = logging.getLogger(__name__)

SOURCES_MANIFEST = DATA_DIR / "sources.json"
DOWNLOADS_DIR = DATA_DIR / "downloads"
USER_AGENT = "embedding-course-kit/0.1 (python urllib)"
MAX_BYTES = 200 * 1024 * 1024
OFFLINE_HINT = (
    "You do not need these files to follow the course: use the bundled course corpus in data/debian-faq/ "
    "(the default), or bring your own PDFs - put them in a folder and pass it with --pdfs "
    "(on Colab: upload them with the Files panel or google.colab.files.upload(), or mount Google Drive)."
)


class SourcesUnavailable(RuntimeError):
    """None of the requested sources could be downloaded (usually: no network)."""


@dataclass(frozen=True)
class Source:
    name: str
    file: str
    title: str
    publisher: str
    urls: tuple[str, ...]
    license: str


def load_manifest(path: Path | str = SOURCES_MANIFEST) -> list[Source]:
    """The sources listed in a manifest file (``{"sources": [{name, file, title, ...}, ...]}``)."""
    rows = json.loads(Path(path).read_text(encoding="utf-8"))["sources"]
    return [Source(r["name"], r["file"], r["title"], r.get("publisher", ""), tuple(r["urls"]),
                   r.get("license", "")) for r in rows]


def is_valid_pdf(path: Path | str) -> bool:
    """True when ``path`` starts like a PDF and opens with pymupdf with at least one page."""
    path = Path(path)
    try:
        with path.open("rb") as f:
            if b"%PDF-" not in f.read(1024):
                return False
        import pymupdf

        with pymupdf.open(path) as doc:
            return doc.page_count > 0
    except Exception:  # any failure to open means "not a usable PDF"
        return False


def download_sources(dest: Path | str = DOWNLOADS_DIR, names: list[str] | None = None, timeout: float = 20,
                     manifest: Path | str = SOURCES_MANIFEST, quiet: bool = False) -> list[Path]:
    """Download the manifest's PDFs (or only ``names``) into ``dest``; return the paths that are there.

    Sources that fail are reported in one message; when none could be fetched at all this raises
    :class:`SourcesUnavailable`, whose message says how to continue offline.
    """
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    failures: dict[str, str] = {}
    for source in _select(load_manifest(manifest), names):
        target = dest / source.file
        if target.exists() and is_valid_pdf(target):
            _say(quiet, f"present   {target}")
            paths.append(target)
            continue
        error = _fetch_any(source, target, timeout)
        if error is None:
            _say(quiet, f"fetched   {target} ({target.stat().st_size // 1024} KiB)")
            paths.append(target)
        else:
            failures[source.name] = error
    if failures:
        message = "Could not download " + "; ".join(f"{n} ({e})" for n, e in failures.items()) + ".\n"
        message += OFFLINE_HINT
        if not paths:
            raise SourcesUnavailable(message)
        print(message, file=sys.stderr)
    return paths


def _select(sources: list[Source], names: list[str] | None) -> list[Source]:
    if names is None:
        return sources
    known = {s.name: s for s in sources}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"Unknown source(s) {', '.join(unknown)}; the manifest lists {', '.join(known)}")
    return [known[n] for n in names]


def _fetch_any(source: Source, target: Path, timeout: float) -> str | None:
    """Try each mirror in turn; None on success, else why the last one failed."""
    error = "no URL listed"
    for url in source.urls:
        error = _fetch(url, target, timeout)
        if error is None:
            return None
    return error


def _fetch(url: str, target: Path, timeout: float) -> str | None:
    """Download one URL to ``target`` atomically, keeping it only if it is a readable PDF."""
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    try:
        with atomic_path(target) as tmp:
            with urllib.request.urlopen(request, timeout=timeout) as response, tmp.open("wb") as out:
                _copy(response, out)
            if not is_valid_pdf(tmp):
                raise _NotAPdf(url)
    except _NotAPdf:
        return f"{url} did not return a readable PDF; nothing was kept"
    except urllib.error.HTTPError as e:
        return f"{url}: HTTP {e.code}"
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
        reason = getattr(e, "reason", e)
        return f"cannot reach {url}: {reason}"
    return None


def _copy(response, out, chunk: int = 1 << 16) -> None:
    total = 0
    while block := response.read(chunk):
        total += len(block)
        if total > MAX_BYTES:
            raise _NotAPdf("too large")
        out.write(block)


class _NotAPdf(Exception):
    pass


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        logger.info(text)


def main(argv: list[str] | None = None) -> int:
    show_messages()
    names = list(sys.argv[1:] if argv is None else argv) or None
    try:
        download_sources(names=names)
    except SourcesUnavailable as e:
        print(e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
