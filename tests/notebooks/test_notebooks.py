"""Each notebook again, through papermill, with every parameter set in notebooks/ci_parameters.yml.

Strict nbval (in `make test`) checks that the committed outputs still reproduce with the
defaults; this checks that the notebooks' assertions also hold for other values, and
against a server the notebook did not start (``BASE_URL``), whose latency and capacity
differ from what the notebook's parameters say.
"""

from __future__ import annotations

import ast
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.devtools.nbrun import run_notebook
from tests.conftest import ROOT

NOTEBOOKS = ROOT / "notebooks"
CI_PARAMETERS: dict[str, dict[str, dict[str, Any]]] = yaml.safe_load((NOTEBOOKS / "ci_parameters.yml").read_text())
ALL = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))
SETS = [(name, set_name) for name in ALL for set_name in CI_PARAMETERS.get(name, {})]

# The separately started server: the bundled upstream's code, in its own process, with
# a latency and a capacity no notebook parameter names. The notebooks see only its URL
# and the name of the variable that holds its key, as they would for any server.
EXTERNAL_LATENCY_S = 0.12
EXTERNAL_CAPACITY = 24
EXTERNAL_KEY_ENV = "RUNBOOK_EXTERNAL_KEY"
PARALLEL = 2  # notebook runs at once
ALONE = {"08_benchmark.ipynb"}  # it measures throughput: never beside another run

pytestmark = pytest.mark.notebooks


@pytest.fixture(scope="module")
def external_server() -> Iterator[str]:
    key = "external-" + secrets.token_urlsafe(12)
    command = [sys.executable, "-m", "support.upstream", "--port", "0", "--latency", str(EXTERNAL_LATENCY_S)]
    command += ["--capacity", str(EXTERNAL_CAPACITY), "--models", "", "--log-level", "warning"]
    env = {**os.environ, "UPSTREAM_API_KEY": key, "PYTHONUNBUFFERED": "1"}
    server = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    previous = os.environ.get(EXTERNAL_KEY_ENV)
    try:
        assert server.stdout is not None
        banner = server.stdout.readline()
        match = re.search(r"(http://[\d.]+:\d+/v1)", banner)
        assert match, f"the external server did not start: {banner!r}"
        os.environ[EXTERNAL_KEY_ENV] = key  # the notebook's kernel inherits it
        yield match.group(1)
    finally:
        server.terminate()
        server.wait(timeout=10)
        if previous is None:
            os.environ.pop(EXTERNAL_KEY_ENV, None)
        else:
            os.environ[EXTERNAL_KEY_ENV] = previous


def test_every_notebook_has_at_least_two_parameter_sets_and_an_external_one() -> None:
    assert sorted(CI_PARAMETERS) == ALL
    for name, sets in CI_PARAMETERS.items():
        assert len(sets) >= 3, name
        assert "small_odd" in sets and sets["external"]["BASE_URL"] == "external", name
        small = sets["small_odd"]
        if "N_REQUESTS" in small:
            assert small["N_REQUESTS"] % small["CONCURRENCY"], f"{name}: small_odd's concurrency divides the count"
        assert small.get("MODEL") not in (None, "gpt-4o-mini"), f"{name}: small_odd keeps the default model"


def injected_values(source: str) -> dict[str, Any]:
    """The assignments in papermill's injected-parameters cell, as values."""
    tree = ast.parse(source)
    return {
        target.id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign)
        for target in node.targets
        if isinstance(target, ast.Name)
    }


def _parameters(name: str, set_name: str, external: str | None) -> dict[str, Any]:
    parameters = dict(CI_PARAMETERS[name][set_name])
    if parameters.get("BASE_URL") == "external":
        assert external is not None
        parameters["BASE_URL"] = external
        parameters["API_KEY_ENV"] = EXTERNAL_KEY_ENV
    return parameters


@pytest.fixture(scope="module")
def runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Run]]:
    """Every selected parameter set's run, started at once, `PARALLEL` at a time.

    A run mostly waits (on the upstream's latency, on a kernel starting), so two at once take
    about half the time on two cores; `ALONE` (the benchmark, which measures throughput)
    starts only when every other run has ended, and runs by itself."""
    selected = [
        (item.callspec.params["name"], item.callspec.params["set_name"])
        for item in request.session.items
        if getattr(item, "originalname", None) == "test_notebook_runs_with_a_parameter_set"
    ]
    needs_external = any(CI_PARAMETERS[n][s].get("BASE_URL") == "external" for n, s in selected)
    external = request.getfixturevalue("external_server") if needs_external else None
    folder = tmp_path_factory.mktemp("runs")
    started: dict[str, Run] = {}
    with ThreadPoolExecutor(PARALLEL) as together, ThreadPoolExecutor(1) as alone:
        for name, set_name in sorted(selected, key=lambda pair: pair[0] in ALONE):
            parameters = _parameters(name, set_name, external)
            output = folder / f"{set_name}-{name}"
            if name in ALONE:
                others = [run.future for run in started.values()]
                future = alone.submit(_after, others, run_notebook, NOTEBOOKS / name, parameters, output)
            else:
                future = together.submit(run_notebook, NOTEBOOKS / name, parameters, output_path=output, timeout=300)
            started[f"{name}-{set_name}"] = Run(parameters, future)
        yield started


@dataclass
class Run:
    parameters: dict[str, Any]
    future: Future[Any]


def _after(others: list[Future[Any]], run: Any, path: Path, parameters: dict[str, Any], output: Path) -> Any:
    wait(others)
    return run(path, parameters, output_path=output, timeout=300)


# The benchmark's first run starts only when every other run has ended, and its test waits for
# them too: its time limit covers them, so it is longer than pyproject's default.
ALONE_TIMEOUT_S = 900


@pytest.mark.parametrize(
    ("name", "set_name"),
    [
        pytest.param(n, s, id=f"{n[:2]}-{s}", marks=[pytest.mark.timeout(ALONE_TIMEOUT_S)] if n in ALONE else [])
        for n, s in SETS
    ],
)
def test_notebook_runs_with_a_parameter_set(name: str, set_name: str, runs: dict[str, Run]) -> None:
    run = runs[f"{name}-{set_name}"]
    executed, parameters = run.future.result(), run.parameters
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    assert injected_values(injected[0].source) == parameters
    outputs = "".join(str(o) for c in executed.cells for o in c.get("outputs", []))
    assert os.environ.get(EXTERNAL_KEY_ENV, "never-set") not in outputs  # the key never lands
