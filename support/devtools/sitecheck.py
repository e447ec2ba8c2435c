"""Static checks of the built site: every internal link and #anchor resolves, and no page
loads anything from the internet.

    python -m support.devtools.sitecheck build/site        # exit 1 and list the problems if any

The browser check (tests/notebooks/test_site.py) calls these too; it adds what only a browser sees.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from functools import cache
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

__all__ = ["Page", "broken_links", "check_site", "external_loads", "html_pages", "is_internal", "main", "parse_page"]

# Tags whose URL the browser fetches on load (as opposed to <a href>, which it only follows).
_LOADED = {
    ("script", "src"),
    ("link", "href"),
    ("img", "src"),
    ("iframe", "src"),
    ("source", "src"),
    ("video", "src"),
    ("audio", "src"),
    ("embed", "src"),
    ("object", "data"),
}


@dataclass
class Page:
    path: Path
    ids: set[str] = field(default_factory=set)
    links: list[str] = field(default_factory=list)  # <a href>
    loads: list[str] = field(default_factory=list)  # URLs fetched on load (script, link, img, ...)


class _Collector(HTMLParser):
    def __init__(self, page: Page) -> None:
        super().__init__(convert_charrefs=True)
        self.page = page

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value for name, value in attrs if value is not None}
        for name in ("id", "name") if tag in ("a", "map") else ("id",):
            if name in values:
                self.page.ids.add(values[name])
        if tag == "a" and "href" in values:
            self.page.links.append(values["href"])
        for loaded_tag, attribute in _LOADED:
            if tag == loaded_tag and attribute in values:
                self.page.loads.append(values[attribute])
        if tag == "img" and "srcset" in values:
            self.page.loads += [part.split()[0] for part in values["srcset"].split(",") if part.strip()]


@cache
def _parse(path: Path, mtime_ns: int) -> Page:  # mtime_ns: part of the cache key, so a rebuilt page is read again
    page = Page(path)
    _Collector(page).feed(path.read_text(encoding="utf-8"))
    return page


def parse_page(path: str | Path) -> Page:
    """The ids, links and loaded URLs of one HTML file."""
    path = Path(path).resolve()
    return _parse(path, path.stat().st_mtime_ns)


def html_pages(site: str | Path) -> list[Path]:
    """Every HTML page of the site, sorted (theme templates in _static and the copied
    notebook sources in _sources are not pages)."""
    site = Path(site)
    return sorted(p for p in site.rglob("*.html") if not {"_static", "_sources"} & set(p.relative_to(site).parts))


def is_internal(url: str) -> bool:
    """A relative or site-absolute URL (not http(s)://, //host, mailto:, data:, javascript:)."""
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc


def external_loads(site: str | Path) -> list[str]:
    """``page: url`` for every resource a page would fetch from another host."""
    site = Path(site)
    found = []
    for path in html_pages(site):
        for url in parse_page(path).loads:
            if not is_internal(url) and urlsplit(url).scheme not in ("data",):
                found.append(f"{path.relative_to(site)}: loads {url}")
    return found


def _target(site: Path, page: Path, url: str) -> tuple[Path, str]:
    parts = urlsplit(url)
    if parts.path.startswith("/"):
        target = site / unquote(parts.path).lstrip("/")
    elif parts.path:
        target = page.parent / unquote(parts.path)
    else:
        target = page
    if target.is_dir():
        target = target / "index.html"
    return target.resolve(), unquote(parts.fragment)


def broken_links(site: str | Path) -> list[str]:
    """``page: url (why)`` for every internal link or loaded file that does not resolve,
    and every ``#anchor`` missing from the HTML page it points to."""
    site = Path(site).resolve()
    problems = []
    for path in html_pages(site):
        page = parse_page(path)
        for url in page.links + page.loads:
            if not is_internal(url):
                continue
            target, fragment = _target(site, path, url)
            if not target.is_file():
                problems.append(f"{path.relative_to(site)}: {url} (no such file)")
            elif not target.is_relative_to(site):
                problems.append(f"{path.relative_to(site)}: {url} (outside the site)")
            elif fragment and target.suffix == ".html" and fragment not in parse_page(target).ids:
                problems.append(f"{path.relative_to(site)}: {url} (no #{fragment} in {target.name})")
    return problems


def check_site(site: str | Path) -> list[str]:
    """All static problems of the site at ``site``; empty when it is fine."""
    site = Path(site)
    if not (site / "index.html").is_file():
        return [f"{site}: no index.html (build it with `make docs`)"]
    return broken_links(site) + external_loads(site)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m support.devtools.sitecheck",
        description="Check a built site: internal links and #anchors resolve, "
        "nothing loads from another host. Exit 1 on problems.",
    )
    parser.add_argument("site", type=Path, nargs="?", default=Path("build/site"))
    args = parser.parse_args(argv)
    problems = check_site(args.site)
    pages = html_pages(args.site) if (args.site / "index.html").is_file() else []
    for problem in problems:
        print(problem)
    print(f"{len(pages)} pages, {len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
