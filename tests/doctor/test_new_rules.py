"""The rules added for issue 17 (OA108-OA112): each has corpus cases, is evaluated, is listed by
--show-rules, and fires on the shortest form of its mistake while its fix stays clean."""

from __future__ import annotations

import pytest

from support.doctor import RULES, check_source, main
from support.doctor.evaluate import evaluate
from tests.conftest import ROOT

CORPUS = ROOT / "tests" / "doctor" / "corpus"
NEW_CODES = ["OA108", "OA109", "OA110", "OA111", "OA112"]

CASES: dict[str, tuple[str, str]] = {
    "OA108": (
        "from openai import AsyncOpenAI\nc = AsyncOpenAI()\nasync def f():\n"
        "    async for x in await c.chat.completions.create(model='m', messages=[], stream=True):\n"
        "        break\n",
        "from openai import AsyncOpenAI\nc = AsyncOpenAI()\nasync def f():\n"
        "    async with await c.chat.completions.create(model='m', messages=[], stream=True) as s:\n"
        "        async for x in s:\n            break\n",
    ),
    "OA109": (
        "from openai import OpenAI\nfrom tenacity import retry\nc = OpenAI()\n@retry\ndef f():\n"
        "    c.chat.completions.create(model='m', messages=[])\n",
        "from openai import OpenAI\nfrom tenacity import retry\nc = OpenAI(max_retries=0)\n@retry\ndef f():\n"
        "    c.chat.completions.create(model='m', messages=[])\n",
    ),
    "OA110": (
        "from openai import AsyncOpenAI\nasync def f():\n    c = AsyncOpenAI(timeout=None)\n",
        "from openai import AsyncOpenAI\nasync def f():\n    c = AsyncOpenAI(timeout=30.0)\n",
    ),
    "OA111": (
        "from azure.identity import DefaultAzureCredential, get_bearer_token_provider\n"
        "from openai import AsyncAzureOpenAI\n"
        "c = AsyncAzureOpenAI(azure_ad_token_provider=get_bearer_token_provider(DefaultAzureCredential(), 's'))\n",
        "from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider\n"
        "from openai import AsyncAzureOpenAI\n"
        "c = AsyncAzureOpenAI(azure_ad_token_provider=get_bearer_token_provider(DefaultAzureCredential(), 's'))\n",
    ),
    "OA112": (
        "from fastapi import Depends, FastAPI, Request\nfrom openai import AsyncOpenAI\napp = FastAPI()\n"
        "def dep(request: Request) -> AsyncOpenAI:\n    return request.app.state.openai\n"
        "@app.get('/')\nasync def route(c: AsyncOpenAI = Depends(dep)):\n    pass\n",
        "from fastapi import Depends, FastAPI, Request\nfrom openai import AsyncOpenAI\napp = FastAPI()\n"
        "async def dep(request: Request) -> AsyncOpenAI:\n    return request.app.state.openai\n"
        "@app.get('/')\nasync def route(c: AsyncOpenAI = Depends(dep)):\n    pass\n",
    ),
}


def _codes(source: str) -> list[str]:
    return [i.code for i in check_source(source)]


@pytest.mark.parametrize("code", sorted(CASES))
def test_fires_on_the_mistake_and_not_on_its_fix(code: str) -> None:
    bad, fixed = CASES[code]
    assert _codes(bad) == [code]
    assert _codes(fixed) == []


@pytest.mark.parametrize("code", sorted(CASES))
def test_corpus_has_positive_cases_all_found(code: str) -> None:
    result = evaluate(CORPUS)
    tp, fp, fn, _ = result.counts(code)
    assert tp >= 3 and fp == 0 and fn == 0


@pytest.mark.parametrize("code", sorted(CASES))
def test_show_rules_lists_it(code: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--show-rules"]) == 0
    assert f"{code}  {RULES[code].title}" in capsys.readouterr().out


def test_oa112_cites_where_fastapi_runs_sync_dependencies_on_a_thread() -> None:
    import inspect

    from fastapi.dependencies import utils

    assert "run_in_threadpool(call" in inspect.getsource(utils.solve_dependencies)
    assert "solve_dependencies" in RULES["OA112"].message and "run_in_threadpool" in RULES["OA112"].message


def test_every_new_rule_has_a_case_and_a_row() -> None:
    assert sorted(CASES) == NEW_CODES
    assert all(code in RULES for code in NEW_CODES)


def test_oa108_flags_both_leaks_in_stream_leaks_each_with_its_message_and_neither_fix() -> None:
    """support/stream_leaks.py (notebook 11): `break_early` leaks until a collection, `return_before_reading`
    for good; the fixes beside them (`async with stream`, `finally: await stream.close()`) stay clean."""
    import ast

    from support.doctor.rules import VARIANTS

    path = ROOT / "support" / "stream_leaks.py"
    source = path.read_text()
    functions = [n for n in ast.walk(ast.parse(source)) if isinstance(n, ast.AsyncFunctionDef)]

    def function_at(line: int) -> str:
        return next(f.name for f in functions if f.lineno <= line <= (f.end_lineno or f.lineno))

    found = {(function_at(i.line), i.code, i.message) for i in check_source(source, str(path))}
    assert found == {
        ("break_early", "OA108", RULES["OA108"].message),
        ("return_before_reading", "OA108", VARIANTS[("OA108", "unread")]),
    }
