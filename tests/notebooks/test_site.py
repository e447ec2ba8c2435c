"""The site check: the docs site built from the committed notebooks, its links, every page in headless chromium.

Builds the site, checks its links statically, then opens every page in a real headless
browser (Debian's chromium).

Needs the `chromium` binary on PATH (`.ci/run` installs it); Playwright drives it, and
never downloads a browser of its own. Screenshots go to build/site-screenshots/.
"""

from __future__ import annotations

import functools
import http.server
import re
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import nbformat
import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from support.devtools import sitecheck
from tests.conftest import ROOT

pytestmark = pytest.mark.site

NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
SCREENSHOTS = ROOT / "build" / "site-screenshots"
LINE_LENGTH = 120  # pyproject.toml's ruff line length: whole lines of it must show at 1280 pixels
# The longest line (at most `max` characters) of each code cell's input that does not fit its box.
CUT_CODE_LINES = """max => [...document.querySelectorAll('div.cell_input pre')].flatMap(pre => {
    const longest = Math.max(...pre.innerText.split('\\n').map(line => line.length));
    return longest <= max && pre.scrollWidth > pre.clientWidth + 1 ? [longest] : [];
})"""
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
LOOPBACK = {"127.0.0.1", "localhost", "::1", "[::1]"}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The site, built as `make docs` builds it (warnings are errors)."""
    out = tmp_path_factory.mktemp("site")
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "sphinx",
            "-W",
            "--keep-going",
            "-q",
            "-b",
            "html",
            "-d",
            str(out / "doctrees"),
            str(ROOT / "notebooks"),
            str(out / "html"),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert build.returncode == 0, build.stdout + build.stderr
    return out / "html"


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    """The site over HTTP on a free loopback port."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    executable = shutil.which("chromium")
    if executable is None:
        pytest.fail(
            "the site check needs Debian's chromium on PATH: apt-get install chromium (make test does this as root)"
        )
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def test_every_notebook_and_the_index_is_a_page(site: Path) -> None:
    pages = {p.name for p in sitecheck.html_pages(site)}
    assert {"index.html", *(nb.with_suffix(".html").name for nb in NOTEBOOKS)} <= pages
    assert not (site / "ci_parameters.html").exists() and not list(site.rglob("ci_parameters*"))
    assert not (site / "conf.html").exists() and not (site / "_ext").exists()


def test_links_and_anchors_resolve_and_nothing_loads_remotely(site: Path) -> None:
    assert sitecheck.check_site(site) == []


def test_sitecheck_reports_a_broken_anchor_and_a_remote_script(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text(
        '<a id="here" href="#here">ok</a><a href="other.html#missing">x</a><a href="gone.html">y</a>'
        '<script src="https://cdn.example.com/x.js"></script><a href="https://example.com">fine</a>'
    )
    (tmp_path / "other.html").write_text('<h1 id="top">other</h1>')
    assert sitecheck.check_site(tmp_path) == [
        "index.html: other.html#missing (no #missing in other.html)",
        "index.html: gone.html (no such file)",
        "index.html: loads https://cdn.example.com/x.js",
    ]


def test_every_notebook_page_says_how_to_run_it(site: Path) -> None:
    for notebook in NOTEBOOKS:
        html = (site / notebook.with_suffix(".html").name).read_text()
        assert 'id="run-it-yourself"' in html, notebook.name
        text = re.sub(r"<[^>]+>", "", html.split('id="run-it-yourself"', 1)[1])
        assert f"python -m support.devtools.nbrun notebooks/{notebook.name} --output-dir build/mine" in text, (
            notebook.name
        )


def _error_outputs(notebook: Path) -> int:
    cells = nbformat.read(notebook, as_version=4).cells
    return sum(o.output_type == "error" for c in cells if c.cell_type == "code" for o in c.outputs)


def _watch(page: Page, name: str, problems: list[str], requested: set[str]) -> None:
    """Record console errors, page errors, failed or >= 400 responses, and every URL requested."""
    page.on("console", lambda m: problems.append(f"{name}: console {m.type}: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(f"{name}: page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"{name}: request failed: {r.url} ({r.failure})"))
    page.on("request", lambda r: requested.add(r.url))
    page.on("response", lambda r: problems.append(f"{name}: HTTP {r.status} for {r.url}") if r.status >= 400 else None)


def test_every_page_in_a_headless_browser(site: Path, served: str, browser: Browser) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    problems: list[str] = []
    requested: set[str] = set()
    internal_links: set[str] = set()
    report: list[str] = []
    try:
        for path in sitecheck.html_pages(site):
            name = path.relative_to(site).as_posix()
            page = context.new_page()
            _watch(page, name, problems, requested)
            response = page.goto(served + name, wait_until="load")
            assert response is not None and response.status == 200, name
            page.wait_for_load_state("networkidle")
            page.evaluate("async () => { await document.fonts.ready; }")

            images = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.currentSrc || e.src, e.complete && e.naturalWidth > 0])"
            )
            problems += [f"{name}: image not loaded: {src}" for src, ok in images if not ok]
            outputs = page.locator("div.cell_output").count()
            tracebacks = page.locator("div.cell_output .output.traceback").count()
            hrefs = page.eval_on_selector_all("a[href]", "els => els.map(e => e.href)")
            internal_links.update(h.split("#")[0] for h in hrefs if urlsplit(h).hostname in LOOPBACK)

            notebook = ROOT / "notebooks" / Path(name).with_suffix(".ipynb").name
            if notebook in NOTEBOOKS:
                if outputs == 0:
                    problems.append(f"{name}: no code outputs rendered")
                if tracebacks != _error_outputs(notebook):
                    problems.append(
                        f"{name}: {tracebacks} tracebacks rendered, the notebook has {_error_outputs(notebook)}"
                    )
                if page.locator("#run-it-yourself pre").count() != 1:
                    problems.append(f"{name}: no 'Run it yourself' command")
                cut = page.evaluate(CUT_CODE_LINES, LINE_LENGTH)
                problems += [f"{name}: a {n}-character code line needs a sideways scroll" for n in cut]
            if name == "index.html":
                tables = page.locator("table").filter(has_text="AsyncOpenAI").filter(has_text="to_thread")
                if tables.count() != 1:
                    problems.append("index.html: the decision table (AsyncOpenAI / to_thread) is missing")
                if "CPU ms/request" not in page.inner_text("main"):
                    problems.append("index.html: notebook 04's measured table is missing")
            page.screenshot(path=str(SCREENSHOTS / f"{Path(name).stem}.png"), full_page=True)
            report.append(f"{name}: {outputs} outputs, {tracebacks} tracebacks, {len(images)} images")
            page.close()

        for url in sorted(internal_links):
            status = context.request.get(url).status
            if status != 200:
                problems.append(f"link {url}: HTTP {status}")
    finally:
        context.close()
    remote = sorted(
        u
        for u in requested
        if urlsplit(u).scheme in ("http", "https", "ws", "wss") and urlsplit(u).hostname not in LOOPBACK
    )
    problems += [f"request to a non-loopback host: {u}" for u in remote]
    print("\n".join(report))
    assert not problems, "\n".join(problems)
    assert len(internal_links) >= len(NOTEBOOKS) + 1
    assert re.search(r"index\.html: 0 outputs", "\n".join(report))  # the index is prose, not a notebook
