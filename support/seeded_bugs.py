"""Seed one realistic bug into a copy of the example service, and see which test approach catches it.

Mutation testing, by hand: each `Bug` is a textual change to
``support/apps/tested/service.py`` (a dict lookup on the reply, a parameter the SDK does
not take, one the API refuses for the model, a forgotten ``await``, the sync client, the
rate limit left unmapped, the client built at import). `run_suite` runs test files from
the example area in a fresh interpreter, with the seeded copy loaded under the service's
own module name by a small import hook, so the copyable files stay clean. `catch_matrix`
runs every approach's file against every bug: a bug is caught when a test of that file
fails or errors.
"""

from __future__ import annotations

import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from .isolated import PROJECT_ROOT, run_python

__all__ = ["APPROACHES", "BUGS", "TESTED", "Bug", "SeedError", "SuiteRun", "catch_matrix", "run_suite", "seed"]

TESTED = Path(__file__).resolve().parent / "apps" / "tested"  # service.py, pytest.ini, suite/, pitfalls/
SERVICE_MODULE = "support.apps.tested.service"
FAILING = ("failed", "error")
SUITE_PLUGINS = ("asyncio", "anyio")  # pytest-asyncio's and AnyIO's entry points

# Each approach: its file in suite/.
APPROACHES: dict[str, str] = {
    "fake, SDK types": "suite/test_fake_client.py",
    "MagicMock": "suite/test_loose_fake.py",
    "MockTransport": "suite/test_mock_transport.py",
    "upstream": "suite/test_upstream.py",
    "lifespan": "suite/test_lifespan.py",
}


class SeedError(ValueError):
    """A bug's text to replace is not in the service exactly once."""


@dataclass(frozen=True)
class Bug:
    """A seeded bug: what it is, and the (old, new) replacements that make it."""

    name: str
    what: str
    edits: tuple[tuple[str, str], ...]


BUGS: dict[str, Bug] = {
    bug.name: bug
    for bug in (
        Bug(
            "await_forgotten",
            "the create call is not awaited",
            (("completion = await client.chat", "completion = client.chat"),),
        ),
        Bug(
            "dict_access",
            'the reply read as a dict: message["content"]',
            (("message.content or", 'message["content"] or'),),
        ),
        Bug(
            "misspelled_param",
            "a parameter the SDK does not take: max_completion_token",
            (("max_completion_tokens=200", "max_completion_token=200"),),
        ),
        Bug(
            "unsupported_param",
            "a parameter the API refuses for this model: reasoning_effort on gpt-4o-mini",
            (("max_completion_tokens=200,", 'max_completion_tokens=200,\n            reasoning_effort="low",'),),
        ),
        Bug(
            "sync_client",
            "the sync OpenAI client made in the lifespan, and awaited",
            (
                ("from openai import AsyncOpenAI", "from openai import AsyncOpenAI, OpenAI"),
                ("async with AsyncOpenAI(", "with OpenAI("),
            ),
        ),
        Bug(
            "rate_limit_unmapped",
            "RateLimitError not mapped: it falls into the catch-all 502, no Retry-After",
            (
                (
                    "    except openai.RateLimitError as error:\n"
                    '        raise HTTPException(503, "model busy", headers={"Retry-After": retry_after(error)})'
                    " from None\n",
                    "",
                ),
            ),
        ),
        Bug(
            "client_at_import",
            "the client made at import, not in the lifespan (never closed)",
            (
                (
                    "    async with AsyncOpenAI(\n"
                    '        timeout=float(os.environ.get("SUMMARIZER_TIMEOUT_S", "30")),\n'
                    '        max_retries=int(os.environ.get("SUMMARIZER_MAX_RETRIES", "2")),\n'
                    "    ) as client:\n"
                    "        app.state.openai = client\n"
                    "        yield\n",
                    "    app.state.openai = client\n    yield\n",
                ),
                (
                    "@asynccontextmanager\nasync def lifespan",
                    "client = AsyncOpenAI(\n"
                    '    timeout=float(os.environ.get("SUMMARIZER_TIMEOUT_S", "30")),\n'
                    '    max_retries=int(os.environ.get("SUMMARIZER_MAX_RETRIES", "2")),\n'
                    ")\n\n\n"
                    "@asynccontextmanager\nasync def lifespan",
                ),
            ),
        ),
    )
}

_HOOK = '''"""Load the seeded copy of the service under the real module's name (written by support.seeded_bugs)."""
import importlib.abc
import importlib.util
import sys
from pathlib import Path


class SeededService(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname == {name!r}:
            return importlib.util.spec_from_file_location(fullname, Path(__file__).with_name("service.py"))
        return None


sys.meta_path.insert(0, SeededService())
'''


def seed(bug: Bug, source: str) -> str:
    """`source` with `bug`'s edits made; each text to replace must occur exactly once."""
    for old, new in bug.edits:
        count = source.count(old)
        if count != 1:
            raise SeedError(f"bug {bug.name!r}: the text to replace occurs {count} times in the service, not once")
        source = source.replace(old, new)
    return source


@dataclass(frozen=True)
class SuiteRun:
    """What pytest reported: each test's outcome ("passed", "failed", "error", "skipped"), each failure's first line."""

    returncode: int
    outcomes: dict[str, str]  # "suite/test_x.py::test_name" -> outcome
    messages: dict[str, str]  # the same keys, failed or errored tests only -> the first line of pytest's message
    output: str

    def failed(self, file: str) -> list[str]:
        """The tests of `file` that failed or errored."""
        return [test for test, outcome in self.outcomes.items() if test.startswith(file + "::") and outcome in FAILING]

    def counts(self) -> dict[str, int]:
        tally: dict[str, int] = {}
        for outcome in self.outcomes.values():
            tally[outcome] = tally.get(outcome, 0) + 1
        return dict(sorted(tally.items()))


def _outcomes(report: Path) -> tuple[dict[str, str], dict[str, str]]:
    """Each test's outcome and, if it did not pass, the first line of pytest's message, from a JUnit XML report."""
    outcomes: dict[str, str] = {}
    messages: dict[str, str] = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        module = case.get("classname", "").rpartition("apps.tested.")[2]
        key = f"{module.replace('.', '/')}.py::{case.get('name')}"
        problems = [element for element in case if element.tag in ("failure", "error", "skipped")]
        if not problems:
            outcomes[key] = "passed"
            continue
        first = problems[0]
        outcomes[key] = "failed" if first.tag == "failure" else first.tag
        messages[key] = (first.get("message") or "").strip().partition("\n")[0]
    return outcomes, messages


def run_suite(*paths: str, bug: str | None = None, timeout: float = 120.0) -> SuiteRun:
    """Run pytest on `paths` (relative to the example area) in a fresh interpreter, with its own
    ``pytest.ini``; with `bug`, against a copy of the service with that bug seeded."""
    if not paths:
        raise ValueError("name at least one test file or folder")
    unknown = [p for p in paths if not (TESTED / p).resolve().is_relative_to(TESTED) or not (TESTED / p).exists()]
    if unknown:
        raise ValueError(f"not in the example area ({TESTED.name}/): {', '.join(unknown)}")
    with tempfile.TemporaryDirectory() as work:
        args = ["-m", "pytest", "-p", "no:cacheprovider", "-q", "--tb=line", f"--junitxml={work}/report.xml"]
        # Only the plugins the suite uses: the environment's others (nbval, ...) take seconds to import.
        args += [arg for plugin in SUITE_PLUGINS for arg in ("-p", plugin)]
        env = {"PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
        if bug is not None:
            if bug not in BUGS:
                raise ValueError(f"no bug {bug!r}; the bugs are {', '.join(BUGS)}")
            Path(work, "service.py").write_text(seed(BUGS[bug], (TESTED / "service.py").read_text()))
            Path(work, "seeded_service.py").write_text(_HOOK.replace("{name!r}", repr(SERVICE_MODULE)))
            args += ["-p", "seeded_service"]
            env["PYTHONPATH"] = work
        done = run_python(
            *args,
            *(str(TESTED / p) for p in paths),
            unset=("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_MODEL"),
            env=env,
            cwd=PROJECT_ROOT,
            timeout=timeout,
        )
        report = Path(work, "report.xml")
        if not report.is_file():
            raise RuntimeError(f"pytest wrote no report (exit status {done.returncode}): {done.stderr.strip()[-500:]}")
        outcomes, messages = _outcomes(report)
    return SuiteRun(done.returncode, outcomes, messages, done.stdout)


def catch_matrix(
    bugs: Iterable[str] = BUGS, approaches: Mapping[str, str] = APPROACHES, *, workers: int = 1
) -> dict[str, SuiteRun]:
    """Run every approach's file against each bug: one pytest run per bug, `workers` at a time.

    One at a time by default: CI runs two notebooks side by side on two cores, and a notebook
    beside this one measures wall times.

    ``runs[bug].failed(approaches[name])`` lists the tests of approach `name` that caught `bug`.
    """
    files = tuple(approaches.values())
    names = list(bugs)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        runs = list(pool.map(lambda bug: run_suite(*files, bug=bug), names))
    return dict(zip(names, runs, strict=True))
