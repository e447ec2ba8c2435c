"""support.doctor.examples: which notebooks run which example service, read from the notebooks."""

from __future__ import annotations

from pathlib import Path

import nbformat

from support.doctor import examples
from tests.conftest import ROOT


def _notebook(path: Path, *code: str) -> None:
    nb = nbformat.v4.new_notebook()
    prose = nbformat.v4.new_markdown_cell("support.apps.in_prose is not run")
    nb.cells = [prose, *map(nbformat.v4.new_code_cell, code)]
    nbformat.write(nb, path)


def test_modules_packages_and_not_the_shared_helpers(tmp_path: Path) -> None:
    for name in ("__init__.py", "schemas.py", "broken.py", "fix_one.py"):
        (tmp_path / name).write_text("")
    (tmp_path / "template").mkdir()
    (tmp_path / "template" / "__init__.py").write_text("")
    (tmp_path / "notes").mkdir()  # a folder without __init__ is not a service
    assert examples.example_modules(tmp_path) == ["broken", "fix_one", "template"]


def test_each_way_a_notebook_runs_a_service(tmp_path: Path) -> None:
    notebooks, support = tmp_path / "notebooks", tmp_path / "support"
    (support / "bench").mkdir(parents=True)
    notebooks.mkdir()
    (support / "__init__.py").write_text("")
    (support / "lab.py").write_text('SERVICES = ("broken", "fix_one")\n')  # a helper that imports them
    (support / "bench" / "__init__.py").write_text('"""Mentions silent_blocking in prose only."""\n')
    (support / "bench" / "patterns.py").write_text('Pattern("x", "support.apps.template:app")\n')
    _notebook(notebooks / "01_a.ipynb", 'service = target.import_service("broken")')
    _notebook(notebooks / "02_b.ipynb", "from support.apps import fix_one, template", "x = 1")
    _notebook(notebooks / "03_c.ipynb", "from support.lab import reproduce")
    _notebook(notebooks / "04_d.ipynb", "from support.bench.patterns import PATTERNS")
    _notebook(notebooks / "05_e.ipynb", "import support.bench  # its docstring names no service")
    _notebook(notebooks / "06_f.ipynb", 'assert "silent_blocking" in doc  # a word in a string, not a service run')
    running = examples.notebooks_running(notebooks, ["broken", "fix_one", "template", "silent_blocking", "in_prose"])
    assert running == {
        "broken": ["01", "03"],
        "fix_one": ["02", "03"],
        "template": ["02", "04"],
        "silent_blocking": [],
        "in_prose": [],  # named in a markdown cell only
    }


def test_findings_by_module_and_the_summary() -> None:
    found = [
        {"path": "support/apps/broken.py", "code": "OA101"},
        {"path": "support/apps/template/service.py", "code": "OA104"},
        {"path": "support/apps/template/routes.py", "code": "OA102"},
    ]
    codes = examples.by_module(found)
    assert codes == {"broken": ["OA101"], "template": ["OA104", "OA102"]}
    running = {"broken": ["05", "06"], "fix_a": ["02"], "fix_b": [], "template": []}
    assert examples.summary(running, codes) == (
        "2 modules flagged, each first run in the notebook named: broken (05), template (no notebook); "
        "2 fix_* modules, 0 of them flagged"
    )
    assert examples.table(running, codes).splitlines()[2].split() == ["broken", "05,", "06", "OA101"]


def test_this_projects_services_are_each_run_by_a_notebook() -> None:
    modules = examples.example_modules(ROOT / "support" / "apps")
    running = examples.notebooks_running(ROOT / "notebooks", modules)
    assert [name for name, notebooks in running.items() if not notebooks] == []
    assert running["loop_closed"][0] == "05"  # 09 once said it came from 01
