"""Build a human-question benchmark shaped like real use: the Debian FAQ inside other Debian documentation.

The folder holds the Debian FAQ's 16 PDFs with their question headings removed, exactly as
build_debian_faq.py builds them (it is run first and its PDFs and questions.jsonl are copied), plus
distractor PDFs printed from the Debian Reference (Debian package debian-reference-en): its preface,
chapters and appendix in reading order, one PDF per chapter, a long chapter split at its top-level
sections so that a PDF holds at most about --max-chars characters of text (build_manual.py's rule). The
distractors are printed until the whole folder holds at least --pages pages, so most pages are ones no
question is about, and many of them (APT, dpkg, networking) are on the FAQ's own topics.

Missing Debian packages (chromium, poppler-utils, debian-faq, debian-reference-en) are installed with
`apt-get install -y` when run as root; otherwise the script exits with the command to run. A rerun whose
manifest.json records the same settings does nothing unless --force is given.

    python benchmarks/corpora/build_debian_docs.py
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import build_debian_faq as faq
import build_manual as bm
import docbook_pdf as dp

PACKAGE = "debian-reference-en"
HTML_DIR = Path("/usr/share/doc/debian-reference-en/docs")
STYLESHEETS = ["debian-reference.css"]
PREFIX = "ref"  # distractor PDFs are ref-NN-<html>[-k].pdf, after the FAQ's NN-<chapter>.pdf


def chapter_pages(name: str) -> list[bm.Page]:
    """One chapter of the Reference as build_manual Pages: its opening (title and text before the first
    section, kind = the division's class: chapter, preface, appendix) and one Page per top-level section."""
    root = dp.load(HTML_DIR / name)
    dp.strip_navigation(root)
    division = dp.content_of(root)[0]
    kind = division.get("class", "")
    title = dp.text_of(root.find(f"{dp.X}head/{dp.X}title"))
    units: list[tuple[str, list]] = [(kind, [])]
    for child in division:
        if child.tag == dp.X + "div" and dp.has_class(child, "section"):
            units.append(("section", [child]))
        else:
            units[0][1].append(child)
    return [bm.Page(name=name, kind=k, title=title, body=body, chars=sum(len(dp.text_of(e)) for e in body))
            for k, body in units if body]


def distractor_groups(max_chars: int) -> list[list[bm.Page]]:
    """The Reference in reading order, cut into PDFs: a chapter each, long ones split at sections."""
    pages = [page for name in faq.chapter_files(HTML_DIR) for page in chapter_pages(name)]
    return bm.group_pages(pages, max_chars)


def group_name(index: int, group: list[bm.Page], part: int, parts: int) -> str:
    """ref-03-ch02.pdf for a whole chapter, ref-03-ch02-2.pdf for its second part."""
    stem = group[0].name.removesuffix(".en.html")
    return f"{PREFIX}-{index:02d}-{stem}" + (f"-{part}" if parts > 1 else "") + ".pdf"


def copy_faq(faq_dir: Path, out_dir: Path) -> list[dict]:
    """Copy the FAQ's PDFs and questions.jsonl; return its manifest's file entries, source added."""
    manifest = json.loads((faq_dir / "manifest.json").read_text())
    for entry in manifest["files"]:
        shutil.copy2(faq_dir / entry["file"], out_dir / entry["file"])
    shutil.copy2(faq_dir / "questions.jsonl", out_dir / "questions.jsonl")
    return [{**entry, "source": faq.PACKAGE} for entry in manifest["files"]]


def build(out_dir: Path, target_pages: int, max_chars: int, min_words: int, force: bool) -> None:
    """Build the FAQ (if needed), copy it, then print Reference chapters until the folder has enough pages."""
    dp.ensure_packages([*dp.TOOL_PACKAGES, faq.PACKAGE, PACKAGE])
    faq_dir = dp.BENCH_DIR / "debian-faq"
    faq.build(faq_dir, min_words, force=False)
    faq_settings = json.loads((faq_dir / "manifest.json").read_text())["settings"]
    settings = dp.build_settings(PACKAGE, target_pages=target_pages, max_chars=max_chars, faq=faq_settings)
    if not force and dp.manifest_matches(out_dir, settings) and (out_dir / "questions.jsonl").exists():
        print(f"{out_dir} is up to date ({faq_settings['version']} + {PACKAGE} {settings['version']}, "
              f">= {target_pages} pages); nothing to do")
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    dp.clear_pdfs(out_dir)
    start = time.monotonic()
    files = copy_faq(faq_dir, out_dir)
    total = sum(f["pages"] for f in files)
    print(f"Debian FAQ: {len(files)} PDFs, {total} pages copied from {faq_dir}")
    groups = distractor_groups(max_chars)
    chapters: dict[str, int] = {}
    for group in groups:
        chapters[group[0].name] = chapters.get(group[0].name, 0) + 1
    seen: dict[str, int] = {}
    order = {name: i for i, name in enumerate(dict.fromkeys(g[0].name for g in groups), start=1)}
    for group in groups:
        if total >= target_pages:
            break
        first = group[0].name
        seen[first] = seen.get(first, 0) + 1
        name = group_name(order[first], group, seen[first], chapters[first])
        body = [elem for page in group for elem in page.body]
        title = group[0].title + (f" (part {seen[first]})" if chapters[first] > 1 else "")
        dp.print_pdf(dp.new_document(title, HTML_DIR, STYLESHEETS, body), out_dir / name)
        n = dp.pdf_pages(out_dir / name)
        total += n
        files.append({"file": name, "title": title, "html": [first], "pages": n, "questions": 0,
                      "source": PACKAGE, "chars": sum(p.chars for p in group)})
        print(f"{name:32s} {n:4d} pages  (total {total})", flush=True)
    elapsed = time.monotonic() - start
    questions = sum(1 for line in (out_dir / "questions.jsonl").read_text().splitlines() if line.strip())
    distractor_pages = sum(f["pages"] for f in files if f["source"] == PACKAGE)
    counts = {"pdfs": len(files), "total_pages": total, "questions": questions,
              "faq_pages": total - distractor_pages, "distractor_pages": distractor_pages,
              "distractor_pdfs": sum(f["source"] == PACKAGE for f in files)}
    dp.write_manifest(out_dir, {"settings": settings, "files": files, **counts})
    print(", ".join(f"{k} {v}" for k, v in counts.items()), f"({elapsed:.0f} s)")


def main(argv: list[str] | None = None) -> None:
    """Parse the command line and build the benchmark."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=dp.BENCH_DIR / "debian-docs", help="output folder")
    parser.add_argument("--pages", type=int, default=250, help="minimum total pages, FAQ included")
    parser.add_argument("--max-chars", type=int, default=bm.MAX_GROUP_CHARS,
                        help="split a chapter at sections to stay under this many characters of text")
    parser.add_argument("--min-words", type=int, default=15, help="the FAQ's: skip answers shorter than this")
    parser.add_argument("--force", action="store_true", help="rebuild even when the manifest is up to date")
    args = parser.parse_args(argv)
    build(args.out, args.pages, args.max_chars, args.min_words, args.force)


if __name__ == "__main__":
    main()
