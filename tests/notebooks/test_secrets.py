"""Secrets never land: a canary key must not appear in any notebook output.

The key reaches a notebook only through the environment variable named by the
`API_KEY_ENV` parameter; these tests plant a recognizable canary there (and the
bundled upstream's own random key) and scan everything the run wrote.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest

from support.devtools.nbrun import run_notebook
from support.upstream import upstream_in_thread
from tests.conftest import ROOT

NOTEBOOKS = ROOT / "notebooks"
CANARY = "sk-canary-" + "c4n4ry" * 6  # shaped like a real key, so any leak is unmistakable
BUNDLED_KEY = re.compile(r"bundled-[A-Za-z0-9_\-]{16,}")


@pytest.mark.notebooks
def test_external_server_key_stays_out_of_the_executed_notebook(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNBOOK_CANARY_KEY", CANARY)
    with upstream_in_thread(latency=0.02, api_key=CANARY) as upstream:
        executed = run_notebook(
            NOTEBOOKS / "00_the_bundled_upstream.ipynb",
            {
                "BASE_URL": upstream.base_url,
                "API_KEY_ENV": "RUNBOOK_CANARY_KEY",
                "LATENCY_S": 0.02,
                "CONCURRENCY": 4,
                "N_REQUESTS": 8,
            },
            output_path=tmp_path / "out.ipynb",
            timeout=120,
        )
        served = [e for e in upstream.journal.entries() if e.status == 200]
    text = (tmp_path / "out.ipynb").read_text()
    assert served, "the notebook really talked to the server with the canary key"
    assert CANARY not in text
    skipped = [o["text"] for c in executed.cells for o in c.get("outputs", []) if o.get("name") == "stdout"]
    assert any("skipped:" in s for s in skipped), "journal and fault cells say they were skipped"


@pytest.mark.parametrize("path", sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.name)
def test_committed_notebooks_hold_no_key(path: Path) -> None:
    notebook = nbformat.read(path, as_version=4)
    text = json.dumps(notebook)
    assert not BUNDLED_KEY.search(text), "the bundled upstream's random key leaked into an output"
    assert not re.search(r"sk-(?:proj-)?[A-Za-z0-9_\-]{20,}", text), "something shaped like an OpenAI key"
