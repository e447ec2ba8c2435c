"""``--format sarif`` and ``--format github``: structure, paths, escaping, exit codes with every format.

No installable package ships the SARIF 2.1.0 JSON schema (sarif-om, sarif-tools,
pydantic-sarif and sarif-pydantic were checked), so the SARIF tests check what the
schema requires of the parts the doctor writes, explicitly: the log's ``version`` and
``runs``, ``tool.driver.name``, each rule's ``id`` and message strings, each result's
``message.text``, ``level`` among the schema's values, 1-based ``startLine`` /
``startColumn``, and the invocation's ``executionSuccessful``.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import nbformat
import pytest

from support.doctor.formats import _escape_data, _escape_property, github_commands, sarif_log
from support.doctor.rules import RULES
from support.doctor.sources import Finding

BROKEN = (
    "from openai import OpenAI\nclient = OpenAI()\nasync def f():\n"
    "    return client.chat.completions.create(model='m', messages=[])\n"
)
CLEAN = "from openai import AsyncOpenAI\nasync def f(c: AsyncOpenAI):\n    return await c.models.list()\n"
FORMATS = ["text", "json", "sarif", "github"]
LEVELS = {"none", "note", "warning", "error"}  # the schema's result.level enum


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "support.doctor", *args], cwd=cwd, capture_output=True, text=True)


def _notebook(path: Path) -> None:
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_markdown_cell("# title"),
        nbformat.v4.new_code_cell("import asyncio\nasync def main():\n    pass"),
        nbformat.v4.new_code_cell("x = 1\nasyncio.run(main())"),
    ]
    nbformat.write(nb, path)


def _check_sarif_structure(log: dict[str, Any]) -> dict[str, Any]:
    """What the SARIF 2.1.0 schema requires of the parts the doctor writes; returns the run."""
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    [run] = log["runs"]
    driver = run["tool"]["driver"]
    assert isinstance(driver["name"], str) and driver["name"]
    rules = driver["rules"]
    assert [r["id"] for r in rules] == list(RULES)
    for rule in rules:
        source = RULES[rule["id"]]
        assert rule["shortDescription"] == {"text": source.title}
        assert rule["fullDescription"] == {"text": source.message}
        assert rule["help"] == {"text": source.message}
        assert rule["defaultConfiguration"]["level"] in LEVELS
    for result in run["results"]:
        assert result["ruleId"] in RULES
        assert rules[result["ruleIndex"]]["id"] == result["ruleId"]
        assert result["level"] in LEVELS
        assert isinstance(result["message"]["text"], str) and result["message"]["text"]
        for location in result["locations"]:
            physical = location["physicalLocation"]
            assert isinstance(physical["artifactLocation"]["uri"], str)
            region = physical.get("region")
            if region is not None:
                assert isinstance(region["startLine"], int) and region["startLine"] >= 1
                assert isinstance(region["startColumn"], int) and region["startColumn"] >= 1
    for base in run["originalUriBaseIds"].values():
        assert base["uri"].startswith("file:///") and base["uri"].endswith("/")
    [invocation] = run["invocations"]
    assert isinstance(invocation["executionSuccessful"], bool)
    for note in invocation.get("toolExecutionNotifications", []):
        assert note["level"] in LEVELS and note["message"]["text"]
    return run


# --- SARIF ----------------------------------------------------------------------------


def test_sarif_points_at_the_file_relative_to_the_working_directory(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "bad.py").write_text(BROKEN)
    out = _cli("--format", "sarif", ".", cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    run = _check_sarif_structure(json.loads(out.stdout))
    [result] = run["results"]
    assert result["ruleId"] == "OA102" and result["level"] == "error"
    assert result["message"]["text"] == RULES["OA102"].message
    assert result["locations"] == [
        {
            "physicalLocation": {
                "artifactLocation": {"uri": "pkg/bad.py", "uriBaseId": "%SRCROOT%"},
                "region": {"startLine": 4, "startColumn": 12},
            }
        }
    ]
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.resolve().as_uri() + "/"
    assert run["invocations"] == [{"executionSuccessful": True}]


def test_sarif_notebook_finding_names_the_cell(tmp_path: Path) -> None:
    _notebook(tmp_path / "nb.ipynb")
    out = _cli("--format", "sarif", "nb.ipynb", cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    [result] = _check_sarif_structure(json.loads(out.stdout))["results"]
    assert result["ruleId"] == "OA106"
    assert result["message"]["text"].startswith("cell 2, line 2, column 1: asyncio.run()")
    # no region: the line is within the cell, not a line of the .ipynb file
    assert result["locations"] == [
        {"physicalLocation": {"artifactLocation": {"uri": "nb.ipynb", "uriBaseId": "%SRCROOT%"}}}
    ]
    assert result["properties"] == {"cell": 2, "cellLine": 2, "cellColumn": 1}


def test_sarif_uri_is_percent_encoded_and_outside_paths_are_absolute(tmp_path: Path) -> None:
    inside = Finding("sub dir/a,b%c#d.py", 1, 1, "OA102", "m")
    outside = Finding(str(tmp_path.parent / "elsewhere.py"), 2, 3, "OA101", "m")
    run = _check_sarif_structure(sarif_log([inside, outside], cwd=str(tmp_path)))
    [first, second] = [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in run["results"]]
    assert first == {"uri": "sub%20dir/a%2Cb%25c%23d.py", "uriBaseId": "%SRCROOT%"}
    assert second == {"uri": (tmp_path.parent / "elsewhere.py").as_uri()}


def test_sarif_clean_run_has_no_results(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text(CLEAN)
    out = _cli("--format", "sarif", ".", cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert _check_sarif_structure(json.loads(out.stdout))["results"] == []


# --- GitHub annotations ----------------------------------------------------------------


def test_github_annotation_per_finding(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "bad.py").write_text(BROKEN)
    _notebook(tmp_path / "nb.ipynb")
    out = _cli("--format", "github", ".", cwd=tmp_path)
    assert out.returncode == 1, out.stderr
    message = RULES["OA106"].message.replace("%", "%25")
    assert out.stdout.splitlines() == [
        f"::error file=nb.ipynb,title=OA106::cell 2, line 2, column 1: {message}",
        f"::error file=pkg/bad.py,line=4,col=12,title=OA102::{RULES['OA102'].message}",
    ]


def test_github_escaping_follows_the_workflow_command_rules() -> None:
    assert _escape_data("50% a\r\nb: c, d") == "50%25 a%0D%0Ab: c, d"
    assert _escape_property("50% a\r\nb: c, d") == "50%25 a%0D%0Ab%3A c%2C d"
    finding = Finding("dir/a,b:c%.py", 3, 7, "OA103", "first line\nsecond: 100%")
    [line] = github_commands([finding], cwd="/nowhere")
    assert line == "::error file=dir/a%2Cb%3Ac%25.py,line=3,col=7,title=OA103::first line%0Asecond: 100%25"


def test_github_clean_run_prints_nothing(tmp_path: Path) -> None:
    (tmp_path / "good.py").write_text(CLEAN)
    out = _cli("--format", "github", ".", cwd=tmp_path)
    assert out.returncode == 0 and out.stdout == ""


# --- exit codes and bad input, with every format --------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_exit_codes_with_every_format(tmp_path: Path, fmt: str) -> None:
    (tmp_path / "bad.py").write_text(BROKEN)
    (tmp_path / "good.py").write_text(CLEAN)
    assert _cli("--format", fmt, "bad.py", cwd=tmp_path).returncode == 1
    assert _cli("--format", fmt, "good.py", cwd=tmp_path).returncode == 0
    for usage_error in [(), ("--select", "XY9", "."), ("--bogus", ".")]:
        out = _cli("--format", fmt, *usage_error, cwd=tmp_path)
        assert out.returncode == 2 and "error" in out.stderr and "Traceback" not in out.stderr


@pytest.mark.parametrize("fmt", FORMATS)
def test_unparsable_files_give_a_clear_message_and_exit_2_with_every_format(tmp_path: Path, fmt: str) -> None:
    (tmp_path / "a_syntax.py").write_text("def f(:\n")
    (tmp_path / "b_bad.py").write_text(BROKEN)
    (tmp_path / "c.ipynb").write_text("{not json")
    out = _cli("--format", fmt, ".", cwd=tmp_path)
    assert out.returncode == 2
    assert "Traceback" not in out.stderr + out.stdout
    assert "python -m support.doctor: error: ./a_syntax.py: cannot parse: invalid syntax (line 1)" in out.stderr
    assert "python -m support.doctor: error: ./c.ipynb: not a notebook" in out.stderr
    if fmt == "sarif":  # still a complete log: the finding, and the run marked unsuccessful
        run = _check_sarif_structure(json.loads(out.stdout))
        assert [r["ruleId"] for r in run["results"]] == ["OA102"]
        [invocation] = run["invocations"]
        assert invocation["executionSuccessful"] is False
        notes = [n["message"]["text"] for n in invocation["toolExecutionNotifications"]]
        assert notes == [
            "./a_syntax.py: cannot parse: invalid syntax (line 1)",
            "./c.ipynb: not a notebook (invalid JSON or no cells)",
        ]
    elif fmt == "github":
        lines = out.stdout.splitlines()
        assert lines[0].startswith("::error file=b_bad.py,line=4,col=12,title=OA102::")
        assert lines[1:] == [
            "::error title=doctor::./a_syntax.py: cannot parse: invalid syntax (line 1)",
            "::error title=doctor::./c.ipynb: not a notebook (invalid JSON or no cells)",
        ]
    elif fmt == "json":
        assert [item["code"] for item in json.loads(out.stdout)] == ["OA102"]
