"""Precision and recall of the static rules on a marked corpus (the project's is ``tests/doctor/corpus``).

A corpus line ending in ``# expect: OA102`` (or ``# expect: OA101, OA102``) must be
flagged with that code; anything else flagged is a false positive.

    python -m support.doctor.evaluate CORPUS_DIR
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ..tables import text_table
from .rules import RULES
from .sources import check_file, iter_files

__all__ = ["Evaluation", "evaluate", "expectations", "format_table"]

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
    """Check every ``.py`` file under `corpus` and compare the findings with its markers."""
    result = Evaluation()
    for path in iter_files([str(corpus)]):
        if not path.endswith(".py"):
            continue
        result.files += 1
        result.expected |= expectations(path)
        result.known_misses |= expectations(path, _KNOWN_MISS)
        findings, errors = check_file(path)
        result.errors.extend(errors)
        result.found |= {(path, f.line, f.code) for f in findings}
    return result


def _ratio(num: int, den: int) -> str:
    return f"{num / den:.2f}" if den else "n/a"


def format_table(result: Evaluation) -> str:
    """One row per rule: precision, recall on the marked cases, and recall counting the
    known misses (the bugs the corpus documents as out of reach)."""
    rows = [
        ("rule", "expected", "flagged", "TP", "FP", "FN", "known miss", "precision", "recall", "recall incl. known")
    ]
    totals = [0, 0, 0, 0]
    for code in [*RULES, "all"]:
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
        description="Precision and recall of the doctor's rules on a marked corpus.",
    )
    parser.add_argument("corpus", type=Path, metavar="CORPUS_DIR", help="a folder of marked .py files")
    args = parser.parse_args(argv)
    if not args.corpus.is_dir():
        parser.error(f"{args.corpus}: not a directory")
    result = evaluate(args.corpus)
    print(
        f"corpus: {result.files} files, {len(result.expected)} marked findings, {len(result.known_misses)} known misses"
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
