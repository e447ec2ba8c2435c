"""support.doctor.project: names imported from a project's other files, and its limits."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from support.doctor.project import Project
from support.doctor.sources import check_file
from tests.conftest import ROOT


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


CALL = "\n\nasync def route():\n    client.chat.completions.create(model='m', messages=[])\n"
BLOCKING_ROUTE = "from {source} import client" + CALL


def codes(path: Path, project: Project | None) -> list[str]:
    findings, errors = check_file(path, project)
    assert errors == []
    return [f.code for f in findings]


def test_an_imported_client_is_known_only_inside_the_project(tmp_path: Path) -> None:
    root = write(tmp_path, {"app/clients.py": "from openai import OpenAI\nclient = OpenAI()\n"})
    route = write(root, {"app/routes.py": BLOCKING_ROUTE.format(source="app.clients")}) / "app" / "routes.py"
    assert codes(route, Project(root)) == ["OA102"]
    assert codes(route, None) == []  # alone, the file holds no evidence
    assert codes(route, Project(root / "elsewhere")) == []  # a file outside the root sees nothing


def test_relative_imports_and_packages(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "svc/app/__init__.py": "from openai import OpenAI\nclient = OpenAI()\n",
            "svc/app/a.py": BLOCKING_ROUTE.format(source="."),
            "svc/app/sub/b.py": BLOCKING_ROUTE.format(source=".."),
        },
    )
    project = Project(root)
    assert codes(root / "svc/app/a.py", project) == ["OA102"]
    assert codes(root / "svc/app/sub/b.py", project) == ["OA102"]


def test_a_project_file_named_like_the_sdk_never_shadows_it(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "openai.py": "class AsyncOpenAI:\n    pass\n",
            "main.py": "from openai import AsyncOpenAI\nclient = AsyncOpenAI()" + CALL,
        },
    )
    assert codes(root / "main.py", Project(root)) == ["OA103"]  # the SDK's async client, not awaited


def test_unknown_stays_unknown(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "app/clients.py": (
                "from openai import AsyncOpenAI, OpenAI\nimport os\n"
                "client = OpenAI() if os.environ.get('X') else AsyncOpenAI()\n"
            ),
            "app/broken.py": "client = (\n",
            "app/r1.py": BLOCKING_ROUTE.format(source="app.clients"),
            "app/r2.py": BLOCKING_ROUTE.format(source="app.broken"),
            "app/r3.py": BLOCKING_ROUTE.format(source="app.missing"),
        },
    )
    project = Project(root)
    assert [codes(root / f"app/r{i}.py", project) for i in (1, 2, 3)] == [[], [], []]


def test_import_cycles_end(tmp_path: Path) -> None:
    root = write(
        tmp_path,
        {
            "a.py": "from b import client" + CALL,
            "b.py": "from a import client\n",
        },
    )
    started = time.monotonic()
    assert codes(root / "a.py", Project(root)) == []
    assert time.monotonic() - started < 5


def test_the_cli_resolves_from_the_directory_it_runs_in(tmp_path: Path) -> None:
    root = write(tmp_path, {"app/clients.py": "from openai import OpenAI\nclient = OpenAI()\n"})
    write(root, {"app/routes.py": BLOCKING_ROUTE.format(source="app.clients")})
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    run = subprocess.run(
        [sys.executable, "-m", "support.doctor", "app/routes.py"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 1, run.stderr
    assert "app/routes.py:4:5: OA102" in run.stdout


@pytest.mark.parametrize("corpus_file", ["app/main.py", "app/helpers.py", "app/clients.py"])
def test_the_hand_corpus_project_needs_the_project(corpus_file: str) -> None:
    """Checked alone, each file of the corpus project loses findings: the evidence is elsewhere."""
    folder = ROOT / "tests" / "doctor" / "corpus" / "project_service"
    alone = codes(folder / corpus_file, None)
    together = codes(folder / corpus_file, Project(folder))
    assert len(alone) < len(together)


def test_an_unclosed_module_client_counts_only_where_the_app_imports_it(tmp_path: Path) -> None:
    client = "from openai import AsyncOpenAI\nclient = AsyncOpenAI()\n"
    root = write(
        tmp_path,
        {
            "app/main.py": "from fastapi import FastAPI\nfrom app.shared import client\napp = FastAPI()\n",
            "app/shared.py": client,
            "scripts/once.py": client,  # a script run on its own, imported by nothing
        },
    )
    project = Project(root)
    assert codes(root / "app/shared.py", project) == ["OA105"]
    assert codes(root / "scripts/once.py", project) == []
    write(
        root,
        {
            "app/main.py": "from fastapi import FastAPI\nfrom app.shared import client as c\n"
            "async def lifespan(app):\n    yield\n    await c.close()\napp = FastAPI(lifespan=lifespan)\n"
        },
    )
    assert codes(root / "app/shared.py", Project(root)) == []  # closed under another name
