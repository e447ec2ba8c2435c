"""``python -m support.doctor PATH...``: exit 0 clean / 1 found / 2 error.

Output: ruff-style text, JSON, SARIF 2.1.0 or GitHub Actions annotations (`formats`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from .formats import github_commands, sarif_log
from .project import Project
from .rules import RULES, selected
from .sources import Finding, check_file, iter_files

__all__ = ["main", "run"]


def _codes(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    return [c.strip().upper() for v in values for c in v.split(",") if c.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m support.doctor",
        description="Find OpenAI SDK misuse in async Python (FastAPI) code: Python files and notebooks.",
        epilog="Exit status: 0 nothing found, 1 something found, 2 usage error or a file that cannot be read/parsed.",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or directories (walked for .py and .ipynb)")
    parser.add_argument(
        "--format",
        choices=["text", "json", "sarif", "github"],
        default="text",
        help="text (ruff-style), json, sarif (SARIF 2.1.0) or github (GitHub Actions annotations)",
    )
    parser.add_argument("--select", action="append", metavar="CODES", help="only these code prefixes (comma-separated)")
    parser.add_argument("--ignore", action="append", metavar="CODES", help="skip these code prefixes (comma-separated)")
    parser.add_argument("--show-rules", action="store_true", help="list the rules and exit")
    return parser


def run(
    paths: Sequence[str], select: list[str] | None = None, ignore: list[str] | None = None
) -> tuple[list[Finding], list[str], int]:
    """Check `paths`; return findings, error messages and the number of files checked.

    Names a file imports from other files under the current directory (the project the
    doctor runs in) resolve to what those files bind (`support.doctor.project`)."""
    findings: list[Finding] = []
    errors: list[str] = []
    count = 0
    project = Project(Path.cwd())
    for path in iter_files(paths):
        count += 1
        found, errs = check_file(path, project)
        findings.extend(f for f in found if selected(f.code, select, ignore))
        errors.extend(errs)
    return findings, errors, count


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse exits 2 on usage errors, 0 on --help
        return int(exc.code or 0)
    if args.show_rules:
        for rule in RULES.values():
            print(f"{rule.code}  {rule.title}")
        return 0
    if not args.paths:
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: give at least one PATH", file=sys.stderr)
        return 2
    select, ignore = _codes(args.select), _codes(args.ignore)
    unknown = [c for c in (select or []) + (ignore or []) if not any(r.startswith(c) or c.startswith(r) for r in RULES)]
    if unknown:
        print(f"{parser.prog}: error: no rule matches {', '.join(unknown)}", file=sys.stderr)
        return 2
    findings, errors, count = run(args.paths, select, ignore)
    for error in errors:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
    if args.format == "json":
        print(json.dumps([f.as_dict() for f in findings], indent=2))
    elif args.format == "sarif":
        print(json.dumps(sarif_log(findings, errors), indent=2))
    elif args.format == "github":
        for line in github_commands(findings, errors):
            print(line)
    else:
        for finding in findings:
            print(finding)
        if findings:
            problems = "problem" if len(findings) == 1 else "problems"
            print(f"Found {len(findings)} {problems} in {count} file{'s' if count != 1 else ''}.")
        elif not errors:
            print(f"All checks passed ({count} file{'s' if count != 1 else ''}).")
    if errors:
        return 2
    return 1 if findings else 0
