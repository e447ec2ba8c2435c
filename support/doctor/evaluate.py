"""Precision and recall of the static rules on a marked corpus (the project's is ``tests/doctor/corpus``),
or on the real-code corpus, a manifest of files from public projects (`support.doctor.realcode`).

A corpus line ending in ``# expect: OA102`` (or ``# expect: OA101, OA102``) must be
flagged with that code; anything else flagged is a false positive. In the real-code
corpus the manifest lists what each file should be flagged with instead.

    python -m support.doctor.evaluate CORPUS_DIR
    python -m support.doctor.evaluate --manifest tests/doctor/realcode --cache build/realcode [--fetch]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..tables import text_table
from .project import Project
from .realcode import ManifestError, RealFile, fetch_missing, load_manifests
from .rules import RULES
from .sources import check_file, iter_files

__all__ = [
    "Evaluation",
    "checker_digest",
    "evaluate",
    "evaluate_real",
    "expectations",
    "format_table",
    "load_record",
    "record",
]

# What decides the findings: a record made with other versions of these is stale.
_CHECKER_FILES = ("checks.py", "project.py", "resolve.py", "rules.py", "sources.py")

_EXPECT = re.compile(r"#\s*expect:\s*(?P<codes>OA\d+(?:\s*,\s*OA\d+)*)")
_KNOWN_MISS = re.compile(r"#\s*known-miss:\s*(?P<codes>OA\d+(?:\s*,\s*OA\d+)*)")

Key = tuple[str, int, str]  # path, line, code


def expectations(path: str, marker: re.Pattern[str] = _EXPECT) -> set[Key]:
    """The (path, line, code) triples a corpus file's markers expect (or, with
    ``marker=_KNOWN_MISS``, the known misses)."""
    expected: set[Key] = set()
    for number, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        match = marker.search(line)
        if match:
            expected.update((path, number, code.strip()) for code in match.group("codes").split(","))
    return expected


@dataclass
class Evaluation:
    expected: set[Key] = field(default_factory=set)
    found: set[Key] = field(default_factory=set)
    known_misses: set[Key] = field(default_factory=set)
    files: int = 0
    errors: list[str] = field(default_factory=list)

    @property
    def missed(self) -> set[Key]:
        return self.expected - self.found

    @property
    def spurious(self) -> set[Key]:
        return self.found - self.expected

    def counts(self, code: str) -> tuple[int, int, int, int]:
        """True positives, false positives, false negatives and known misses for `code`."""
        tp = sum(1 for k in self.found & self.expected if k[2] == code)
        fp = sum(1 for k in self.spurious if k[2] == code and k not in self.known_misses)
        fn = sum(1 for k in self.missed if k[2] == code)
        known = sum(1 for k in self.known_misses - self.found if k[2] == code)
        return tp, fp, fn, known

    @property
    def spurious_findings(self) -> set[Key]:
        """Flagged but neither expected nor a known miss (a known miss now caught is not spurious)."""
        return self.spurious - self.known_misses


def evaluate(corpus: str | Path) -> Evaluation:
    """Check every ``.py`` file under `corpus` and compare the findings with its markers.

    A file directly in `corpus` is checked alone; each folder in it is a project (its
    files see what they import from each other, see `support.doctor.project`)."""
    result = Evaluation()
    projects: dict[str, Project] = {}
    for path in iter_files([str(corpus)]):
        if not path.endswith(".py"):
            continue
        result.files += 1
        result.expected |= expectations(path)
        result.known_misses |= expectations(path, _KNOWN_MISS)
        parts = Path(path).relative_to(corpus).parts
        project = projects.setdefault(parts[0], Project(Path(corpus) / parts[0])) if len(parts) > 1 else None
        findings, errors = check_file(path, project)
        result.errors.extend(errors)
        result.found |= {(path, f.line, f.code) for f in findings}
    return result


def evaluate_real(files: list[RealFile], cache: Path) -> Evaluation:
    """Check each manifest file from `cache` against the findings its manifest expects.

    A file missing from the cache is an error (fill the cache with `fetch_missing`)."""
    result = Evaluation()
    for real in files:
        result.expected |= {(real.key, e.line, e.code) for e in real.findings}
        local = real.cache_path(cache)
        if not local.is_file():
            result.errors.append(f"{real.key}@{real.commit[:12]}: not in the cache {cache} (use --fetch)")
            continue
        result.files += 1
        findings, errors = check_file(local, Project(real.cache_root(cache)))
        result.errors.extend(errors)
        result.found |= {(real.key, f.line, f.code) for f in findings}
    return result


def checker_digest(manifests: Path) -> str:
    """A hash of the checker's source and of the manifests: what a recorded result depends on."""
    digest = hashlib.sha256()
    here = Path(__file__).parent
    for path in [*(here / name for name in _CHECKER_FILES), *sorted(manifests.glob("*.toml"))]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def record(result: Evaluation, manifests: Path) -> dict[str, object]:
    """The evaluation as data, with the digest it was made with (see `load_record`).

    The real-code corpus's files are not in this project, so CI cannot re-run its
    evaluation; it can check that the checker and the labels are still those the
    recorded result was measured with."""
    return {
        "checker_digest": checker_digest(manifests),
        "files": result.files,
        "expected": sorted(result.expected),
        "found": sorted(result.found),
        "errors": result.errors,
    }


def load_record(path: Path) -> tuple[Evaluation, str]:
    """A recorded evaluation and the digest it was made with."""
    data = json.loads(path.read_text(encoding="utf-8"))
    result = Evaluation(
        expected={(str(path), int(line), str(code)) for path, line, code in data["expected"]},
        found={(str(path), int(line), str(code)) for path, line, code in data["found"]},
        files=data["files"],
        errors=list(data["errors"]),
    )
    return result, str(data["checker_digest"])


def _ratio(num: int, den: int) -> str:
    return f"{num / den:.2f}" if den else "n/a"


def format_table(result: Evaluation) -> str:
    """One row per rule: precision, recall on the marked cases, and recall counting the
    known misses (the bugs the corpus documents as out of reach)."""
    rows = [
        ("rule", "expected", "flagged", "TP", "FP", "FN", "known miss", "precision", "recall", "recall incl. known")
    ]
    totals = [0, 0, 0, 0]
    labelled = sorted({k[2] for k in result.expected | result.found} - set(RULES))  # a code with no rule yet
    for code in [*RULES, *labelled, "all"]:
        if code == "all":
            tp, fp, fn, km = totals
        else:
            tp, fp, fn, km = result.counts(code)
            totals = [a + b for a, b in zip(totals, (tp, fp, fn, km), strict=True)]
        rows.append(
            (
                code,
                str(tp + fn),
                str(tp + fp),
                str(tp),
                str(fp),
                str(fn),
                str(km),
                _ratio(tp, tp + fp),
                _ratio(tp, tp + fn),
                _ratio(tp, tp + fn + km),
            )
        )
    return text_table(rows, rule=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m support.doctor.evaluate",
        description="Precision and recall of the doctor's rules on a marked corpus, or on the real-code corpus.",
    )
    parser.add_argument("corpus", type=Path, nargs="?", metavar="CORPUS_DIR", help="a folder of marked .py files")
    parser.add_argument("--manifest", type=Path, metavar="DIR", help="a folder of real-code manifests (*.toml)")
    parser.add_argument(
        "--cache",
        type=Path,
        default=Path("build/realcode"),
        help="where the manifest's files are (default: %(default)s)",
    )
    parser.add_argument("--fetch", action="store_true", help="download the files the cache lacks (needs the internet)")
    parser.add_argument("--record", type=Path, metavar="JSON", help="with --manifest: write the evaluation to JSON")
    args = parser.parse_args(argv)
    if (args.corpus is None) == (args.manifest is None):
        parser.error("give either CORPUS_DIR or --manifest DIR")
    if args.manifest is not None:
        if not args.manifest.is_dir():
            parser.error(f"{args.manifest}: not a directory")
        try:
            files = load_manifests(args.manifest)
        except ManifestError as exc:
            parser.error(str(exc))
        fetch_errors = fetch_missing(files, args.cache) if args.fetch else []
        result = evaluate_real(files, args.cache)
        result.errors[:0] = fetch_errors
        if args.record is not None:
            args.record.write_text(json.dumps(record(result, args.manifest), indent=1) + "\n", encoding="utf-8")
        print(f"real-code corpus: {len(files)} files listed, {result.files} checked from {args.cache}")
    else:
        if not args.corpus.is_dir():
            parser.error(f"{args.corpus}: not a directory")
        result = evaluate(args.corpus)
        print(
            f"corpus: {result.files} files, {len(result.expected)} marked findings, "
            f"{len(result.known_misses)} known misses"
        )
    print(format_table(result))
    for path, line, code in sorted(result.missed):
        print(f"missed: {path}:{line}: {code}")
    for path, line, code in sorted(result.spurious_findings):
        print(f"false positive: {path}:{line}: {code}")
    for error in result.errors:
        print(f"error: {error}")
    return 0 if not (result.missed or result.spurious_findings or result.errors) else 1


if __name__ == "__main__":
    sys.exit(main())
