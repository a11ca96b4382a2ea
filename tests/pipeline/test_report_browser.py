"""report.html in a real browser: the verdict is on the first screen, no table is wider than the page and no
word in a table is split over two lines.

The page is the run report of a recorded smoke run (the ``recorded_run`` fixture). Headless Chromium loads
a copy with a script that writes what it measures into the DOM, and ``--dump-dom`` hands that back.
Skipped, with the reason, where no Chromium is installed.
"""

from __future__ import annotations

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
SCREEN = (1280, 800)  # a laptop's first screen
# What the page measures, written into <pre id="measure"> for --dump-dom to return.
MEASURE = """<script>
const screenHeight = window.innerHeight, pageWidth = document.documentElement.clientWidth;
const verdict = document.getElementById('verdict');
const first = (sel) => verdict && verdict.querySelector(sel);
const bottom = (el) => el ? el.getBoundingClientRect().bottom : null;
const result = {
  screen_height: screenHeight,
  first_section: (document.querySelector('section') || {}).id || null,
  verdict_heading_bottom: bottom(first('h2')),
  verdict_sentence_bottom: bottom(first('p')),
  verdict_text: first('p') ? first('p').innerText : '',
  overflowing: [...document.querySelectorAll('table')]
    .filter((t) => t.getBoundingClientRect().right > pageWidth + 1 || t.scrollWidth > t.clientWidth + 1)
    .map((t) => t.innerText.slice(0, 80)),
  tables: document.querySelectorAll('table').length,
  // words of a table's header or cell drawn on two lines ("cou/nt"): a word split by the layout
  split_words: [...document.querySelectorAll('th, td')].flatMap((cell) => {
    const node = cell.firstChild, text = cell.textContent, split = [];
    if (!node || node.nodeType !== Node.TEXT_NODE) return split;
    for (const m of text.matchAll(/\\S+/g)) {
      const range = document.createRange();
      range.setStart(node, m.index); range.setEnd(node, m.index + m[0].length);
      if (new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size > 1) split.push(m[0]);
    }
    return split;
  }),
};
const out = document.createElement('pre');
out.id = 'measure';
out.textContent = JSON.stringify(result);
document.body.appendChild(out);
</script>"""


def browser() -> str | None:
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def chromium_args(exe: str, profile_dir: Path, width: int, height: int) -> list[str]:
    """The flags of scripts/screenshot_report.sh: headless, no network features, a fixed window."""
    return [exe, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync",
            f"--user-data-dir={profile_dir}", "--hide-scrollbars", f"--window-size={width},{height}"]


@pytest.fixture
def report_html(recorded_run) -> Path:
    """The run report of the recorded smoke run (tests/pipeline/conftest.py), written by today's code."""
    from helpers.pipeline.run_report import write_run_report

    return write_run_report(recorded_run)[1]


def measure(page: Path, tmp_path: Path, width: int, height: int) -> dict:
    exe = browser()
    if exe is None:
        pytest.skip("no Chromium installed (apt-get install chromium): report.html not checked in a browser")
    probe = tmp_path / f"probe_{width}.html"
    probe.write_text(page.read_text().replace("</body>", MEASURE + "</body>"))
    args = chromium_args(exe, tmp_path / "profile", width, height)
    done = subprocess.run([*args, "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()],
                          capture_output=True, text=True, timeout=120)
    found = re.search(r'<pre id="measure">(.*?)</pre>', done.stdout, re.S)
    assert found, f"the page's measurements did not come back: {done.stderr[-2000:]}"
    return json.loads(html.unescape(found[1]))


def test_the_verdict_is_the_first_section_and_fills_the_first_screen(report_html, tmp_path):
    seen = measure(report_html, tmp_path, *SCREEN)
    assert seen["first_section"] == "verdict"
    assert seen["verdict_heading_bottom"] < seen["screen_height"]
    assert seen["verdict_sentence_bottom"] < seen["screen_height"]
    assert "fine-tuned vs base" in seen["verdict_text"].lower()


@pytest.mark.parametrize("width", [SCREEN[0], 1024])
def test_no_table_is_wider_than_the_page(report_html, tmp_path, width):
    seen = measure(report_html, tmp_path, width, SCREEN[1])
    assert seen["tables"] >= 5
    assert seen["overflowing"] == []


@pytest.mark.parametrize("width", [SCREEN[0], 1024])
def test_no_word_in_a_table_is_split_over_two_lines(report_html, tmp_path, width):
    seen = measure(report_html, tmp_path, width, SCREEN[1])
    assert seen["split_words"] == []
