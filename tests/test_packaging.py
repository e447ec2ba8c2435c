"""The packaging files agree with each other: one source of dependencies, one Python."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from tests.conftest import ROOT

PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
ENVIRONMENT = yaml.safe_load((ROOT / "environment.yml").read_text())


def _conda_python() -> str:
    pins = [d for d in ENVIRONMENT["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert len(pins) == 1, pins
    return pins[0].split("=", 1)[1]


def _pip_lines() -> list[str]:
    sections = [d["pip"] for d in ENVIRONMENT["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1
    return sections[0]


def test_environment_python_satisfies_requires_python() -> None:
    requires = SpecifierSet(PYPROJECT["project"]["requires-python"])
    assert Version(_conda_python()) in requires


def test_environment_installs_the_project_with_existing_extras_under_the_constraints() -> None:
    constraints, line = _pip_lines()  # everything else comes from pyproject.toml
    assert constraints == "-c constraints.txt"
    match = re.fullmatch(r'-e "?\.\[([a-z,-]+)\]"?', line)
    assert match, line
    extras = set(match.group(1).split(","))
    assert extras <= set(PYPROJECT["project"]["optional-dependencies"])


def test_constraints_pin_every_declared_dependency() -> None:
    pinned = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            pinned[_canonical(name)] = version
    declared = list(PYPROJECT["project"]["dependencies"])
    for extra in PYPROJECT["project"]["optional-dependencies"].values():
        declared += extra
    for spec in declared:
        requirement = Requirement(spec)
        name = _canonical(requirement.name)
        assert name in pinned, f"{name} is declared but not pinned in constraints.txt (run `make constraints`)"
        assert requirement.specifier.contains(pinned[name], prereleases=True), (name, pinned[name])


def test_makefile_installs_with_the_constraints() -> None:
    makefile = (ROOT / "Makefile").read_text()
    assert "-c constraints.txt" in makefile


def _extras(line: str) -> set[str]:
    match = re.search(r"\.\[([a-z,-]+)\]", line)
    assert match, line
    return set(match.group(1).split(","))


def test_pip_install_of_the_project_installs_only_the_doctor() -> None:
    """pre-commit's `language: python` hook runs `pip install .`: no dependency comes with it.

    The doctor is standard-library only (`test_the_doctor_runs_without_site_packages`); the
    runbook's stack (FastAPI, the SDK, uvicorn...) is the `runbook` extra.
    """
    assert PYPROJECT["project"]["dependencies"] == []
    assert "openai[aiohttp]>=3.50" in PYPROJECT["project"]["optional-dependencies"]["runbook"]


def test_every_install_command_adds_the_runbook_extra() -> None:
    [makefile_extras] = re.findall(r"^EXTRAS := (.+)$", (ROOT / "Makefile").read_text(), re.MULTILINE)
    for extras in [set(makefile_extras.split(",")), _extras(_pip_lines()[1])]:
        assert "runbook" in extras
        assert extras <= set(PYPROJECT["project"]["optional-dependencies"])


# The doctor's modules that may import more: `examples` reads the notebooks with nbformat
# (for the test suite, never for the command line or the pre-commit hook).
NOT_STANDARD_LIBRARY_ONLY = {"examples"}

_WITHOUT_SITE_PACKAGES = """
import importlib, json, sys
sys.path.insert(0, sys.argv[1])
modules = json.loads(sys.argv[2])
for name in modules:
    importlib.import_module(name)
from support.doctor.cli import main
codes = [main(["--format", fmt, sys.argv[3]]) for fmt in ("text", "json", "sarif", "github")]
import os, sysconfig
homes = {sysconfig.get_path("stdlib"), sysconfig.get_path("platstdlib"), os.path.join(sys.argv[1], "support")}
files = {getattr(m, "__file__", None) or "" for m in list(sys.modules.values())}
outside = sorted(f for f in files if f and not any(f.startswith(home + os.sep) for home in homes))
print(json.dumps({"codes": codes, "outside": outside}))
"""


def test_the_doctor_runs_without_site_packages(tmp_path: Path) -> None:
    """`python -S -I`: no site-packages, so any import outside the standard library fails."""
    modules = ["support.doctor", "support.doctor.__main__"] + [
        f"support.doctor.{path.stem}"
        for path in sorted((ROOT / "support" / "doctor").glob("*.py"))
        if not path.stem.startswith("_") and path.stem not in NOT_STANDARD_LIBRARY_ONLY
    ]
    modules.remove("support.doctor.__main__")  # running it would exit; `main` is called below
    bad = tmp_path / "bad.py"
    bad.write_text("from openai import OpenAI\nc = OpenAI()\nasync def f():\n    c.models.list()\n")
    done = subprocess.run(
        [sys.executable, "-S", "-I", "-c", _WITHOUT_SITE_PACKAGES, str(ROOT), json.dumps(modules), str(bad)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report == {"codes": [1, 1, 1, 1], "outside": []}


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
