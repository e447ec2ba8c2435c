"""support.seeded_bugs: each bug seeds exactly once into the real service, bad requests get precise
errors before any pytest runs, and the JUnit report is read right."""

from __future__ import annotations

from pathlib import Path

import pytest

from support.seeded_bugs import BUGS, TESTED, Bug, SeedError, _outcomes, run_suite, seed

SERVICE = (TESTED / "service.py").read_text()


@pytest.mark.parametrize("name", BUGS)
def test_each_bug_changes_the_service_and_still_compiles(name: str) -> None:
    seeded = seed(BUGS[name], SERVICE)
    assert seeded != SERVICE
    compile(seeded, "service.py", "exec")


def test_a_missing_text_is_a_precise_error() -> None:
    with pytest.raises(SeedError, match=r"^bug 'typo': the text to replace occurs 0 times in the service, not once$"):
        seed(Bug("typo", "", (("no such line", "x"),)), SERVICE)


def test_an_ambiguous_text_is_a_precise_error() -> None:
    with pytest.raises(SeedError, match=r"occurs [2-9]\d* times"):
        seed(Bug("vague", "", (("import", "x"),)), SERVICE)


@pytest.mark.parametrize(
    ("paths", "bug", "message"),
    [
        ((), None, "name at least one test file or folder"),
        (("suite/test_nothing.py",), None, "not in the example area (tested/): suite/test_nothing.py"),
        (("../../../tests",), None, "not in the example area (tested/): ../../../tests"),
        (("/etc",), None, "not in the example area (tested/): /etc"),
        (("suite",), "no_such_bug", "no bug 'no_such_bug'; the bugs are await_forgotten,"),
    ],
)
def test_bad_requests_are_refused_before_pytest_runs(paths: tuple[str, ...], bug: str | None, message: str) -> None:
    with pytest.raises(ValueError) as info:
        run_suite(*paths, bug=bug)
    assert str(info.value).startswith(message)


def test_the_junit_report_is_read_per_test(tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    report.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="support.apps.tested.suite.test_a" name="test_ok" />'
        '<testcase classname="support.apps.tested.suite.test_a" name="test_bad">'
        '<failure message="assert 502 == 200&#10;second line">tb</failure></testcase>'
        '<testcase classname="support.apps.tested.pitfalls.test_b" name="test_setup">'
        '<error message="failed on setup with &quot;ScopeMismatch&quot;">tb</error></testcase>'
        '<testcase classname="support.apps.tested.suite.test_a" name="test_skip"><skipped message="no" /></testcase>'
        "</testsuite></testsuites>"
    )
    outcomes, messages = _outcomes(report)
    assert outcomes == {
        "suite/test_a.py::test_ok": "passed",
        "suite/test_a.py::test_bad": "failed",
        "pitfalls/test_b.py::test_setup": "error",
        "suite/test_a.py::test_skip": "skipped",
    }
    assert messages["suite/test_a.py::test_bad"] == "assert 502 == 200"
    assert messages["pitfalls/test_b.py::test_setup"] == 'failed on setup with "ScopeMismatch"'
