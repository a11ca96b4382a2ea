"""Shared steps of the corpus builders: Debian packages, DocBook XHTML clean-up, printing with Chromium.

Standard library and subprocess only (no `helpers` import). The DocBook XHTML that Debian's documentation
packages ship is well-formed XML, so it is read and rewritten with xml.etree and printed as .xhtml, which
Chromium parses as XML too.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable, Iterable
from pathlib import Path

XHTML = "http://www.w3.org/1999/xhtml"
X = "{" + XHTML + "}"
ET.register_namespace("", XHTML)

REPO = Path(__file__).resolve().parents[2]
BENCH_DIR = REPO / "data" / "downloads" / "bench"
TOOL_PACKAGES = ["chromium", "poppler-utils"]
# One fixed page geometry so page counts do not depend on Chromium's locale default (Letter or A4).
PAGE_CSS = "@page { size: A4; margin: 18mm 16mm; } body { margin: 0; max-width: none; }"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-pdf-header-footer",
]


def missing_packages(packages: Iterable[str]) -> list[str]:
    """Return the Debian packages of `packages` that dpkg does not report as installed."""
    missing = []
    for pkg in packages:
        status = subprocess.run(
            ["dpkg-query", "-W", "-f=${db:Status-Status}", pkg], capture_output=True, text=True
        )
        if status.stdout.strip() != "installed":
            missing.append(pkg)
    return missing


def ensure_packages(packages: list[str]) -> None:
    """Install missing `packages` with `apt-get install -y` (as root; otherwise exit with the command)."""
    missing = missing_packages(packages)
    if not missing:
        return
    command = ["apt-get", "install", "-y", *missing]
    if os.geteuid() != 0:
        raise SystemExit(f"missing Debian packages; run as root: apt-get update && {' '.join(command)}")
    print("installing:", " ".join(command), flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(command, env=env).returncode != 0:
        raise SystemExit(f"apt-get failed; run `apt-get update` first, then: {' '.join(command)}")


def package_version(pkg: str) -> str:
    """Return the installed version of Debian package `pkg`."""
    return subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True, text=True, check=True
    ).stdout.strip()


def chromium_version() -> str:
    """Return Chromium's version line, recorded in manifests because page breaks depend on it."""
    return subprocess.run(
        ["chromium", "--version"], capture_output=True, text=True, check=True
    ).stdout.strip()


def load(path: Path) -> ET.Element:
    """Parse one DocBook XHTML file and return its <html> root."""
    return ET.parse(path).getroot()


def text_of(elem: ET.Element) -> str:
    """Return the element's text with whitespace collapsed to single spaces."""
    return " ".join("".join(elem.itertext()).split())


def has_class(elem: ET.Element, *classes: str) -> bool:
    """True when the element's class attribute names one of `classes`."""
    return any(c in elem.get("class", "").split() for c in classes)


def remove_where(root: ET.Element, predicate: Callable[[ET.Element], bool]) -> int:
    """Remove every element for which `predicate` is true (with its subtree); return how many were removed.

    The tail text after a removed element is kept by appending it to the previous sibling or the parent.
    """
    removed = 0
    for parent in list(root.iter()):
        for child in list(parent):
            if not predicate(child):
                continue
            if child.tail:
                index = list(parent).index(child)
                if index:
                    prev = parent[index - 1]
                    prev.tail = (prev.tail or "") + child.tail
                else:
                    parent.text = (parent.text or "") + child.tail
            parent.remove(child)
            removed += 1
    return removed


def strip_navigation(root: ET.Element) -> None:
    """Remove DocBook navigation bars and tables of contents, which no reader's document would contain."""
    remove_where(root, lambda e: e.tag == X + "div" and has_class(e, "navheader", "navfooter", "toc"))


def content_of(root: ET.Element) -> list[ET.Element]:
    """Return the children of <body> (navigation already stripped)."""
    return list(root.find(X + "body"))


def new_document(title: str, base_dir: Path, stylesheets: list[str], body: list[ET.Element]) -> ET.Element:
    """Build an XHTML document whose relative links resolve against `base_dir` (a <base> element)."""
    html = ET.Element(X + "html")
    head = ET.SubElement(html, X + "head")
    ET.SubElement(head, X + "meta", {"http-equiv": "Content-Type", "content": "text/html; charset=UTF-8"})
    ET.SubElement(head, X + "base", {"href": base_dir.resolve().as_uri() + "/"})
    ET.SubElement(head, X + "title").text = title
    for href in stylesheets:
        ET.SubElement(head, X + "link", {"rel": "stylesheet", "type": "text/css", "href": href})
    ET.SubElement(head, X + "style", {"type": "text/css"}).text = PAGE_CSS
    ET.SubElement(html, X + "body").extend(body)
    return html


def print_pdf(doc: ET.Element, pdf_path: Path, timeout_s: int = 300) -> None:
    """Write `doc` to a temporary .xhtml file and print it to `pdf_path` with one headless Chromium."""
    with tempfile.TemporaryDirectory(prefix="corpus-xhtml-") as tmp:
        page = Path(tmp) / "page.xhtml"
        ET.ElementTree(doc).write(page, encoding="utf-8", xml_declaration=True)
        print_file(page, pdf_path, timeout_s)


def print_file(page: Path, pdf_path: Path, timeout_s: int = 300) -> None:
    """Print the page file `page` to `pdf_path` with one headless Chromium and a new empty profile."""
    with tempfile.TemporaryDirectory(prefix="corpus-chromium-") as profile:
        tmp_pdf = pdf_path.with_suffix(".pdf.part")
        command = [
            "chromium",
            *CHROMIUM_FLAGS,
            f"--user-data-dir={profile}",
            f"--print-to-pdf={tmp_pdf}",
            page.as_uri(),
        ]
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
        if result.returncode != 0 or not tmp_pdf.exists():
            raise RuntimeError(f"chromium failed on {pdf_path.name}:\n{result.stderr[-2000:]}")
        tmp_pdf.replace(pdf_path)


def pdf_pages(pdf_path: Path) -> int:
    """Return the page count that `pdfinfo` reports."""
    info = subprocess.run(["pdfinfo", str(pdf_path)], capture_output=True, text=True, check=True).stdout
    for line in info.splitlines():
        if line.startswith("Pages:"):
            return int(line.split()[1])
    raise RuntimeError(f"pdfinfo gave no page count for {pdf_path}")


def pdf_text(pdf_path: Path) -> str:
    """Return the PDF's text as `pdftotext` extracts it, whitespace collapsed."""
    out = subprocess.run(["pdftotext", str(pdf_path), "-"], capture_output=True, text=True, check=True).stdout
    return " ".join(out.split())


def build_settings(package: str, **extra) -> dict:
    """What a build depends on (package and Chromium versions, page CSS, the builder's own options)."""
    return {"package": package, "version": package_version(package), "chromium": chromium_version(),
            **extra, "page_css": PAGE_CSS}


def manifest_matches(out_dir: Path, settings: dict) -> bool:
    """True when `out_dir` has a manifest built with `settings` and every PDF it lists is present."""
    path = out_dir / "manifest.json"
    if not path.exists():
        return False
    manifest = json.loads(path.read_text())
    if manifest.get("settings") != settings:
        return False
    return all((out_dir / entry["file"]).exists() for entry in manifest["files"])


def write_manifest(out_dir: Path, manifest: dict) -> None:
    """Write manifest.json (sorted keys, so reruns give the same bytes for the same build)."""
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")


def start_build(out_dir: Path, settings: dict, force: bool, described: str) -> bool:
    """False (and say so) when `out_dir` is up to date with `settings`, unless `force`; else empty it of an
    earlier build's PDFs and manifest and return True."""
    if not force and manifest_matches(out_dir, settings):
        print(f"{out_dir} is up to date ({described}); nothing to do")
        return False
    out_dir.mkdir(parents=True, exist_ok=True)
    clear_pdfs(out_dir)
    return True


def clear_pdfs(out_dir: Path) -> None:
    """Delete the PDFs, half-written PDFs and manifest of an earlier build in `out_dir`."""
    for path in [*out_dir.glob("*.pdf"), *out_dir.glob("*.pdf.part"), out_dir / "manifest.json"]:
        path.unlink(missing_ok=True)
