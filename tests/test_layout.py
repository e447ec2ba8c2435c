"""The README's Layout and the package map in support/__init__.py name every module and folder of support/."""

from __future__ import annotations

import re

import pytest

import support
from tests.conftest import ROOT

SUPPORT = ROOT / "support"


def _entries() -> list[str]:
    """Top-level modules (``serve.py``) and packages (``bench/``) of support/, and bench's modules."""
    top = [p.name for p in SUPPORT.glob("*.py") if p.name != "__init__.py"]
    top += [f"{p.name}/" for p in SUPPORT.iterdir() if (p / "__init__.py").is_file()]
    bench = [p.name for p in (SUPPORT / "bench").glob("*.py") if not p.name.startswith("__")]
    return sorted(top) + sorted(bench)


def _layout_block() -> str:
    readme = (ROOT / "README.md").read_text()
    match = re.search(r"## Layout\n.*?```\n(.*?)```", readme, re.DOTALL)
    assert match, "README.md has no Layout section with a code block"
    return match.group(1)


@pytest.mark.parametrize("entry", _entries())
def test_readme_layout_names_every_module(entry: str) -> None:
    assert re.search(rf"(^|[\s,(]){re.escape(entry)}", _layout_block(), re.MULTILINE), entry


@pytest.mark.parametrize("entry", [e for e in _entries() if e.endswith("/") or (SUPPORT / e).is_file()])
def test_package_map_names_every_top_level_module(entry: str) -> None:
    name = entry.removesuffix("/").removesuffix(".py")
    assert f"`{name}" in (support.__doc__ or ""), name


def test_package_code_never_reads_tests() -> None:
    offenders = [
        str(p.relative_to(ROOT))
        for p in SUPPORT.rglob("*.py")
        if re.search(r"""["']tests["']|/tests/""", p.read_text())
    ]
    assert not offenders, offenders
