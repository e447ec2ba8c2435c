"""Each notebook once more, through papermill, with the parameters in notebooks/ci_parameters.yml.

Strict nbval (in `make test`) checks the committed outputs still reproduce with the
defaults; this checks that the notebooks' assertions also hold for other values.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from support.devtools.nbrun import run_notebook
from tests.conftest import ROOT

NOTEBOOKS = ROOT / "notebooks"
CI_PARAMETERS = yaml.safe_load((NOTEBOOKS / "ci_parameters.yml").read_text())
ALL = sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))

pytestmark = pytest.mark.notebooks


def test_every_notebook_has_ci_parameters() -> None:
    assert sorted(CI_PARAMETERS) == ALL


@pytest.mark.parametrize("name", ALL)
def test_notebook_runs_with_ci_parameters(name: str, tmp_path: Path) -> None:
    executed = run_notebook(NOTEBOOKS / name, CI_PARAMETERS[name], output_path=tmp_path / name, timeout=300)
    injected = [c for c in executed.cells if "injected-parameters" in c.metadata.get("tags", [])]
    assert len(injected) == 1
    for parameter, value in CI_PARAMETERS[name].items():
        assert f"{parameter} = {value!r}" in injected[0].source
