"""The doctor's machine-readable outputs: SARIF 2.1.0 and GitHub Actions workflow commands.

SARIF (``--format sarif``) is what code-scanning services read (GitHub's
``upload-sarif``): one run, the rules from `rules.RULES`, one result per finding with
its file relative to the working directory (``%SRCROOT%``) and its line and column.
GitHub (``--format github``) prints one ``::error file=...,line=...,col=...,title=OA102::``
workflow command per finding, which an Actions job shows as an annotation on the line.

A notebook finding has no line of the ``.ipynb`` file to point at (its line is within a
code cell), so both formats name the notebook, leave the line out and start the message
with ``cell N, line L, column C`` (SARIF also keeps them in the result's properties).
Files that cannot be read or parsed become SARIF tool-execution notifications (the run
is then not successful) and ``::error`` commands without a line.
"""

from __future__ import annotations

import os
import urllib.parse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .rules import RULES
from .sources import Finding

__all__ = ["SARIF_SCHEMA", "SARIF_VERSION", "TOOL_NAME", "github_commands", "sarif_log"]

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
TOOL_NAME = "openai-async-doctor"  # the pre-commit hook's id
SRCROOT = "%SRCROOT%"


def _relative(path: str, cwd: str) -> str | None:
    """`path` (absolute, or relative to `cwd`) relative to `cwd` in POSIX form, or None outside `cwd`."""
    rel = os.path.relpath(os.path.join(cwd, path), cwd)
    if rel == os.pardir or rel.startswith(os.pardir + os.sep) or os.path.isabs(rel):
        return None
    return Path(rel).as_posix()


def _cell_prefix(finding: Finding) -> str:
    return f"cell {finding.cell}, line {finding.line}, column {finding.column}: " if finding.cell is not None else ""


def _artifact(path: str, cwd: str) -> dict[str, str]:
    rel = _relative(path, cwd)
    if rel is None:
        return {"uri": Path(os.path.normpath(os.path.join(cwd, path))).as_uri()}
    return {"uri": urllib.parse.quote(rel), "uriBaseId": SRCROOT}


def _sarif_rule(code: str) -> dict[str, Any]:
    rule = RULES[code]
    return {
        "id": rule.code,
        "name": "".join(w[:1].upper() + w[1:] for w in rule.title.replace("-", " ").split() if w.isalnum()),
        "shortDescription": {"text": rule.title},
        "fullDescription": {"text": rule.message},
        "help": {"text": rule.message},
        "defaultConfiguration": {"level": "error"},
    }


def _sarif_result(finding: Finding, index: dict[str, int], cwd: str) -> dict[str, Any]:
    location: dict[str, Any] = {"artifactLocation": _artifact(finding.path, cwd)}
    result: dict[str, Any] = {
        "ruleId": finding.code,
        "level": "error",
        "message": {"text": _cell_prefix(finding) + finding.message},
        "locations": [{"physicalLocation": location}],
    }
    if finding.code in index:
        result["ruleIndex"] = index[finding.code]
    if finding.cell is None:
        location["region"] = {"startLine": finding.line, "startColumn": finding.column}
    else:
        result["properties"] = {"cell": finding.cell, "cellLine": finding.line, "cellColumn": finding.column}
    return result


def sarif_log(findings: Sequence[Finding], errors: Sequence[str] = (), cwd: str | None = None) -> dict[str, Any]:
    """A SARIF 2.1.0 log of `findings` (paths relative to `cwd`, the working directory by default)."""
    base = os.path.abspath(cwd if cwd is not None else os.getcwd())
    rules = [_sarif_rule(code) for code in RULES]
    index = {rule["id"]: i for i, rule in enumerate(rules)}
    invocation: dict[str, Any] = {"executionSuccessful": not errors}
    if errors:
        invocation["toolExecutionNotifications"] = [{"level": "error", "message": {"text": e}} for e in errors]
    run: dict[str, Any] = {
        "tool": {"driver": {"name": TOOL_NAME, "rules": rules}},
        "originalUriBaseIds": {SRCROOT: {"uri": Path(base).as_uri() + "/"}},
        "invocations": [invocation],
        "results": [_sarif_result(f, index, base) for f in findings],
    }
    return {"$schema": SARIF_SCHEMA, "version": SARIF_VERSION, "runs": [run]}


def _escape_data(text: str) -> str:
    """GitHub's escaping of a workflow command's message (actions/toolkit ``escapeData``)."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _escape_property(text: str) -> str:
    """GitHub's escaping of a workflow command's property value (``escapeProperty``)."""
    return _escape_data(text).replace(":", "%3A").replace(",", "%2C")


def _command(properties: dict[str, str], message: str) -> str:
    props = ",".join(f"{key}={_escape_property(value)}" for key, value in properties.items())
    return f"::error {props}::{_escape_data(message)}" if props else f"::error::{_escape_data(message)}"


def github_commands(findings: Sequence[Finding], errors: Sequence[str] = (), cwd: str | None = None) -> list[str]:
    """One ``::error`` workflow command per finding, then one per file that could not be checked."""
    base = os.path.abspath(cwd if cwd is not None else os.getcwd())
    lines = []
    for finding in findings:
        properties = {"file": _relative(finding.path, base) or finding.path}
        if finding.cell is None:
            properties |= {"line": str(finding.line), "col": str(finding.column)}
        properties["title"] = finding.code
        lines.append(_command(properties, _cell_prefix(finding) + finding.message))
    lines.extend(_command({"title": "doctor"}, error) for error in errors)
    return lines
