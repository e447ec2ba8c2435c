"""No measured-looking number is typed into prose.

A timing, a ratio, a count of requests in a notebook's markdown or in ``index.md``
goes stale the day a library or the machine changes, while the cells beside it are
re-executed and asserted. So prose says what to look for, and the numbers come from
cell outputs (a printed sentence or a table). The only numbers allowed in prose are
the constants listed in ``ALLOWED``, each a library's own value that a cell reads and
asserts; Python versions, notebook numbers and HTTP status codes are not measurements
and are not flagged.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import pytest

from tests.conftest import ROOT

NOTEBOOKS = ROOT / "notebooks"
SOURCES = [*sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")), NOTEBOOKS / "index.md"]

# Each phrase: the constant it names and the cell that reads and asserts it.
ALLOWED: dict[str, str] = {
    "40 tokens": "AnyIO's default thread limiter (anyio.to_thread.current_default_thread_limiter); 02 asserts it",
    "40 threads": "the same limiter, counted as threads; 02 asserts it",
    "40 calls": "the same limiter, as calls in flight; 02 asserts it",
    "600 s": "the SDK's default read timeout (openai._constants.DEFAULT_TIMEOUT); 07 asserts it",
}

_UNITS = (
    r"ms|µs|s|secs?|seconds?|minutes?|mins?|hours?|%|×|x|req/s|requests/s|rps|KiB|MiB|GiB|KB|MB|GB|bytes|"
    r"cores?|threads?|tokens?|connections?|streams?|clients?|callers?|requests?|calls?|times|workers?|"
    r"processes|tasks?|points?|per"
)
_WORDS = r"a|an|one|two|three|four|five|six|seven|eight|nine|ten|twenty|thirty|forty|fifty|a few|several"
MEASURED = re.compile(
    rf"(?<![\w.])\d[\d,]*(?:\.\d+)?\s?(?:{_UNITS})(?![\w/])"  # 50 ms, 1.8x, 90%, 6 on 2 cores
    rf"|(?<![\w.])\d+\.\d+(?![\w.])"  # any decimal: 0.5, 1.47
    rf"|\b(?:about|around|roughly|nearly|almost|over|under)\s+\d"  # about 40
    rf"|[~≈]\s?\d"
    rf"|\b(?:{_WORDS})(?:\s+to\s+(?:{_WORDS}))?\s+(?:seconds|minutes|hours|milliseconds)\b"  # two to three minutes
    rf"|\b(?:a|one) (?:third|quarter|thousand|hundred|dozen)\b|\bthousands\b|\bhundreds\b|\bhalf as\b",
    re.IGNORECASE,
)
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
_LINK_TARGET = re.compile(r"\]\([^)]*\)")
_PYTHON_VERSION = re.compile(r"\b3\.1\d\b")
_ALLOWED = re.compile("|".join(re.escape(phrase) for phrase in ALLOWED), re.IGNORECASE)


def prose(path: Path) -> list[str]:
    """The markdown of `path` (a notebook's markdown cells, or a .md file)."""
    if path.suffix == ".md":
        return [path.read_text()]
    return [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "markdown"]


def measured_numbers(text: str) -> list[str]:
    """Every measured-looking number in `text`, outside code, link targets and `ALLOWED`."""
    for pattern in (_CODE, _LINK_TARGET, _PYTHON_VERSION, _ALLOWED):
        text = pattern.sub(" ", text)
    return [m.group(0) for m in MEASURED.finditer(text)]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_no_measured_number_is_typed_into_prose(path: Path) -> None:
    found = [
        (number, line.strip())
        for text in prose(path)
        for line in text.splitlines()
        for number in measured_numbers(line)
    ]
    assert not found, "numbers typed into prose (print them from a cell instead):\n" + "\n".join(
        f"  {number!r} in: {line[:120]}" for number, line in found
    )


@pytest.mark.parametrize(
    "text",
    [
        "fix C narrows the lead to 1.47",
        "each call takes about 40 ms",
        "the run takes two to three minutes",
        "a thousand such streams",
        "about a third less CPU",
        "6 on 2 cores",
        "90% of the upstream alone",
        "it ranged up to 1.8x",
        "about 40 per latency",
        "an overhead of ~30 ms",
        "a few seconds",
    ],
)
def test_the_scan_catches_measured_numbers(text: str) -> None:
    assert measured_numbers(text)


@pytest.mark.parametrize(
    "text",
    [
        "AnyIO's limiter holds 40 tokens per event loop",
        "the SDK's read timeout of 600 s",
        "Python 3.12 says so; from 3.14 it says otherwise",
        "notebook 04 shows a 429 and then a 200",
        "set `LATENCY_S = 0.5` in the parameters cell",
        "see [the table](08_benchmark.ipynb#0.5-s)",
        "```python\nsleep(0.5)\n```",
        "one client per app, two workers on two cores, five calls",
    ],
)
def test_the_scan_leaves_constants_code_and_references_alone(text: str) -> None:
    assert measured_numbers(text) == []
