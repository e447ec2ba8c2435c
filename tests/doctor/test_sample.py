"""support.doctor.sample: notebook 09's sample project, and what the doctor finds in it."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from support.doctor.sample import NOTEBOOK_CELLS, SERVICE_MAIN, write_sample_project


def doctor_json(cwd: Path) -> list[dict[str, object]]:
    done = subprocess.run(
        [sys.executable, "-m", "support.doctor", "--format", "json", "."],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    found: list[dict[str, object]] = json.loads(done.stdout)
    return found


def test_write_sample_project_into_a_given_directory(tmp_path: Path) -> None:
    project = write_sample_project(tmp_path / "sample")
    assert project == tmp_path / "sample"
    assert (project / "service" / "main.py").read_text() == SERVICE_MAIN
    notebook = json.loads((project / "analysis.ipynb").read_text())
    assert notebook["nbformat"] == 4
    assert [cell["source"] for cell in notebook["cells"]] == NOTEBOOK_CELLS
    assert len({cell["id"] for cell in notebook["cells"]}) == len(NOTEBOOK_CELLS)


def test_write_sample_project_defaults_to_a_new_temporary_directory() -> None:
    first, second = write_sample_project(), write_sample_project()
    try:
        assert first != second and first.name.startswith("doctor-sample-")
    finally:
        for project in (first, second):
            shutil.rmtree(project)


def test_the_doctor_finds_the_whole_family_and_leaves_the_look_alikes_alone(tmp_path: Path) -> None:
    found = doctor_json(write_sample_project(tmp_path))
    assert sorted((f["path"], f["code"]) for f in found) == [
        ("./analysis.ipynb", "OA101"),
        ("./analysis.ipynb", "OA106"),
        ("./service/main.py", "OA102"),
        ("./service/main.py", "OA103"),
        ("./service/main.py", "OA104"),
        ("./service/main.py", "OA105"),
        ("./service/main.py", "OA107"),
    ]
    fine_from = SERVICE_MAIN.splitlines().index('@app.post("/fine")') + 1
    assert all(int(str(f["line"])) < fine_from for f in found if str(f["path"]).endswith("main.py"))
