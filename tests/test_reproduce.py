"""support.reproduce: CPython's error texts per version, notebook 01's services, and the fix as shown first."""

from __future__ import annotations

import asyncio
import inspect
import re
import sys
from typing import Any

import httpx
import nbformat
import pytest

import support.apps.fix_async_client
import support.apps.fix_sync_route
from support.reproduce import SERVICES, async_for_error_text, await_error_text, reproduce
from support.target import Target, connect
from tests.conftest import ROOT

RUNNING = (sys.version_info.major, sys.version_info.minor)


# --- the error texts ------------------------------------------------------------------------------


async def _await(value: object) -> object:
    return await value  # type: ignore[misc]


async def _async_for(value: object) -> None:
    async for _ in value:  # type: ignore[attr-defined]
        pass


def _type_error(coroutine_function: object, value: object) -> str:
    with pytest.raises(TypeError) as raised:
        asyncio.run(coroutine_function(value))  # type: ignore[operator]
    return str(raised.value)


@pytest.mark.parametrize("value", [42, [1, 2], "text"], ids=lambda v: type(v).__name__)
def test_await_error_text_is_what_this_python_raises(value: object) -> None:
    assert _type_error(_await, value) == await_error_text(type(value).__name__)


@pytest.mark.parametrize("value", [42, [1, 2], "text"], ids=lambda v: type(v).__name__)
def test_async_for_error_text_is_what_this_python_raises(value: object) -> None:
    assert _type_error(_async_for, value) == async_for_error_text(type(value).__name__)


def test_async_for_over_a_coroutine_names_the_coroutine_type() -> None:
    async def create() -> None:
        return None

    pending = create()
    try:
        assert _type_error(_async_for, pending) == async_for_error_text("coroutine")
    finally:
        pending.close()


def test_the_await_wording_changed_in_3_14() -> None:
    assert await_error_text("ChatCompletion", (3, 13)) == "object ChatCompletion can't be used in 'await' expression"
    assert await_error_text("ChatCompletion", (3, 14)) == "'ChatCompletion' object can't be awaited"
    assert await_error_text("Stream", (3, 15)) == "'Stream' object can't be awaited"
    assert await_error_text("int") == await_error_text("int", RUNNING)


def test_the_async_for_wording_is_the_same_in_every_version() -> None:
    expected = "'async for' requires an object with __aiter__ method, got coroutine"
    assert {async_for_error_text("coroutine", (3, minor)) for minor in range(5, 16)} == {expected}


def test_a_version_without_the_syntax_has_no_message() -> None:
    with pytest.raises(ValueError, match=r"3\.4"):
        async_for_error_text("coroutine", (3, 4))


# --- reproduce: the target and the services ------------------------------------------------------


@pytest.fixture
def sdk_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The services are imported after the SDK's variables are set: restore them after the test."""
    for variable in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "OPENAI_MODEL"):
        monkeypatch.delenv(variable, raising=False)


@pytest.mark.usefixtures("sdk_env")
def test_reproduce_points_every_service_at_the_target_and_measures_it() -> None:
    lab = reproduce(None, "a-model-of-my-own", "UNUSED_KEY_VARIABLE", latency_s=0.05)
    try:
        assert lab.target.bundled and lab.target.model == "a-model-of-my-own"
        assert sorted(lab.services) == sorted(SERVICES)
        assert lab.broken_await is lab.services["broken_await"]
        assert str(lab.broken_await.client.base_url).rstrip("/") == lab.target.base_url.rstrip("/")
        assert lab.latency_s >= 0.05  # the bundled upstream waits its latency before answering
        assert f"{lab.latency_s:.3f} s" in str(lab)
        with pytest.raises(AttributeError):
            lab.no_such_service  # noqa: B018 - the attribute access is the test

        url = lab.serve(lab.fix_async_client)
        assert lab.serve(lab.fix_async_client) == url  # served once
        reply = httpx.post(url + "/chat", json={"prompt": "hello"}, timeout=10)
        assert reply.status_code == 200 and reply.json()["text"]
    finally:
        lab.close()
    with pytest.raises(httpx.ConnectError):
        httpx.get(url + "/health", timeout=2)


@pytest.mark.usefixtures("sdk_env")
def test_reproduce_stops_the_upstream_when_a_service_cannot_be_imported(monkeypatch: pytest.MonkeyPatch) -> None:
    started: list[Target] = []

    def recording_connect(*args: Any, **kwargs: Any) -> Target:
        started.append(connect(*args, **kwargs))
        return started[-1]

    monkeypatch.setattr("support.reproduce.connect", recording_connect)
    monkeypatch.setattr("support.reproduce.SERVICES", ("no_such_service",))
    with pytest.raises(ModuleNotFoundError):
        reproduce(None, "m", "UNUSED", latency_s=0.01)
    (target,) = started
    with pytest.raises(httpx.ConnectError):
        httpx.get(target.base_url + "/models", timeout=2)


# --- the fix shown first is the fix that runs -----------------------------------------------------

MODULES = {"fix C": support.apps.fix_async_client, "fix A": support.apps.fix_sync_route}
_PYTHON_BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _chunks(snippet: str) -> list[list[str]]:
    """The snippet's non-blank lines, in runs separated by ``...`` lines (an elision)."""
    chunks: list[list[str]] = [[]]
    for line in snippet.splitlines():
        if line.strip() == "...":
            chunks.append([])
        elif line.strip():
            chunks[-1].append(line.rstrip())
    return [chunk for chunk in chunks if chunk]


def missing_from(snippet: str, source: str) -> list[str]:
    """What keeps `snippet` from being an excerpt of `source`: each run of its lines must
    appear in `source` as consecutive non-blank lines, the runs in order. [] when it is one."""
    lines = [line.rstrip() for line in source.splitlines() if line.strip()]
    position = 0
    for chunk in _chunks(snippet):
        found = next(
            (i for i in range(position, len(lines) - len(chunk) + 1) if lines[i : i + len(chunk)] == chunk), None
        )
        if found is None:
            return chunk
        position = found + len(chunk)
    return []


def _fix_snippets(markdown: str) -> list[str]:
    return [block for block in _PYTHON_BLOCK.findall(markdown) if "chat.completions.create" in block]


def _opening_markdown() -> dict[str, str]:
    """index.md up to its first section, and notebook 01's markdown before its first code cell."""
    index = (ROOT / "notebooks" / "index.md").read_text().split("\n## ", 1)[0]
    cells = nbformat.read(ROOT / "notebooks" / "01_reproduce_the_error.ipynb", as_version=4).cells
    first_code = next(i for i, cell in enumerate(cells) if cell.cell_type == "code")
    return {"index.md": index, "01": "\n".join(c.source for c in cells[:first_code] if c.cell_type == "markdown")}


@pytest.mark.parametrize("where", ["index.md", "01"])
def test_the_page_opens_with_both_fixes_as_excerpts_of_the_real_modules(where: str) -> None:
    snippets = _fix_snippets(_opening_markdown()[where])
    assert len(snippets) == 2, f"{where}: expected fix C then fix A before anything else"
    for snippet, (name, module) in zip(snippets, MODULES.items(), strict=True):
        missing = missing_from(snippet, inspect.getsource(module))
        assert not missing, f"{where}: the {name} snippet is not an excerpt of {module.__name__}: {missing}"
        assert sum(1 for line in snippet.splitlines() if line.strip()) <= 15, (where, name)
    assert "await client.chat.completions.create(" in snippets[0] and "async def chat(" in snippets[0]
    assert "AsyncOpenAI() as client" in snippets[0]
    assert "\ndef chat(" in "\n" + snippets[1] and "await" not in snippets[1]


def test_both_pages_show_the_same_snippets() -> None:
    pages = _opening_markdown()
    assert _fix_snippets(pages["index.md"]) == _fix_snippets(pages["01"])


@pytest.mark.parametrize(
    ("snippet", "missing"),
    [
        ("def f():\n    return 1\n", []),
        ("def f():\n\n    return 1\n...\ndef g():\n", []),
        ("def g():\n...\ndef f():\n", ["def f():"]),  # out of order
        ("def f():\n    return 2\n", ["def f():", "    return 2"]),
    ],
)
def test_missing_from(snippet: str, missing: list[str]) -> None:
    assert missing_from(snippet, "def f():\n    return 1\n\n\ndef g():\n    pass\n") == missing
