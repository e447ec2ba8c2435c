"""The packaging files agree with each other: one source of dependencies, one Python."""

from __future__ import annotations

import re
import tomllib

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


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()
