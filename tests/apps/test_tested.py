"""The example area support/apps/tested: its suite passes on the service, its pitfalls fail as
documented, and its approaches can fail (a seeded bug that every one of them must catch).

The suite is run as a reader's would be, by pytest in a fresh interpreter with the area's own
pytest.ini (`support.seeded_bugs.run_suite`); the project's own run never collects it.
"""

from __future__ import annotations

import pytest

from support.seeded_bugs import APPROACHES, TESTED, SuiteRun, run_suite

SUITE_FILES = sorted(p.relative_to(TESTED).as_posix() for p in (TESTED / "suite").glob("test_*.py"))


@pytest.fixture(scope="module")
def suite_run() -> SuiteRun:
    return run_suite("suite")


def test_every_test_of_the_suite_passes_on_the_service(suite_run: SuiteRun) -> None:
    assert suite_run.returncode == 0, suite_run.output
    assert set(suite_run.outcomes.values()) == {"passed"}, suite_run.output
    files = {test.partition("::")[0] for test in suite_run.outcomes}
    assert files == set(SUITE_FILES)
    assert set(APPROACHES.values()) <= files


def test_the_suite_keeps_respx_and_both_loop_plugins(suite_run: SuiteRun) -> None:
    names = set(suite_run.outcomes)
    assert "suite/test_respx.py::test_respx_does_not_intercept_the_sdks_transport" in names
    assert "suite/test_respx.py::test_respx_intercepts_a_client_on_the_httpx_package" in names
    assert any(name.startswith("suite/test_shared_client_anyio.py::") for name in names)


def test_the_pitfalls_fail_as_their_docstrings_say() -> None:
    run = run_suite("pitfalls")
    assert run.outcomes == {
        "pitfalls/test_module_client_function_loops.py::test_first": "passed",
        "pitfalls/test_module_client_function_loops.py::test_second": "failed",
        "pitfalls/test_module_client_warmed_up.py::test_first": "failed",
        "pitfalls/test_module_client_warmed_up.py::test_second": "error",
        "pitfalls/test_module_fixture_default_loop.py::test_uses_the_shared_client": "error",
        "pitfalls/test_module_level_client.py::test_first": "passed",
        "pitfalls/test_module_level_client.py::test_second": "failed",
    }, run.output
    messages = run.messages
    assert (
        messages["pitfalls/test_module_client_function_loops.py::test_second"] == "RuntimeError: Event loop is closed"
    )
    assert messages["pitfalls/test_module_level_client.py::test_second"] == "RuntimeError: Event loop is closed"
    assert "ScopeMismatch" in messages["pitfalls/test_module_fixture_default_loop.py::test_uses_the_shared_client"]


def test_every_approach_can_fail() -> None:
    """A forgotten await breaks every call: every approach's file must report it."""
    run = run_suite(*APPROACHES.values(), bug="await_forgotten")
    for approach, file in APPROACHES.items():
        assert run.failed(file), f"{approach} missed a forgotten await"
    assert "AttributeError: 'coroutine' object has no attribute 'usage'" in run.messages.values()


def test_a_client_nobody_replaced_never_leaves_the_machine() -> None:
    """The suite's conftest points the SDK at a dead loopback port first: a client built at
    import fails fast there (502 from the service) instead of calling the real API."""
    run = run_suite("suite/test_upstream.py", bug="client_at_import")
    failed = run.failed("suite/test_upstream.py")
    assert failed, run.output
    # each failure is the service's 502 ("the model could not answer"): a connection refused
    assert all("502" in run.messages[test] or "could not answer" in run.messages[test] for test in failed), run.messages


def test_the_services_retry_after_cap_is_the_sdks() -> None:
    """The service caps a passed-on Retry-After at the longest wait the SDK itself honours."""
    from openai._constants import MAX_RETRY_AFTER_DELAY

    from support.apps.tested.service import RETRY_AFTER_CAP_S

    assert RETRY_AFTER_CAP_S == MAX_RETRY_AFTER_DELAY
