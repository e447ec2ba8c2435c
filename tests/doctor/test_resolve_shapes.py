"""The client shapes name resolution knows, checked against the installed SDK (so an SDK
upgrade that renames an alias or a module-level resource is noticed), and a few shapes
checked one by one."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from support.doctor import check_source
from support.doctor.resolve import ASYNC_CLASSES, MODULE_RESOURCES, SYNC_CLASSES

openai = pytest.importorskip("openai")


def _resolve(qualname: str) -> object:
    module, _, name = qualname.rpartition(".")
    return getattr(importlib.import_module(module), name)


@pytest.mark.parametrize("qualname", sorted(SYNC_CLASSES))
def test_every_sync_name_is_the_sync_client(qualname: str) -> None:
    cls = _resolve(qualname)
    assert isinstance(cls, type) and issubclass(cls, openai.OpenAI)


@pytest.mark.parametrize("qualname", sorted(ASYNC_CLASSES))
def test_every_async_name_is_the_async_client(qualname: str) -> None:
    cls = _resolve(qualname)
    assert isinstance(cls, type) and issubclass(cls, openai.AsyncOpenAI)


def test_the_aliases_are_the_classes() -> None:
    assert openai.Client is openai.OpenAI and openai.AsyncClient is openai.AsyncOpenAI


def test_the_module_resources_are_the_module_clients() -> None:
    """Every name in MODULE_RESOURCES is a module-level proxy of the sync client's resource,
    and every such proxy is listed."""
    proxies = importlib.import_module("openai._module_client")
    tree = ast.parse(Path(proxies.__file__).read_text(encoding="utf-8"))
    exported = {
        node.target.id
        for node in tree.body
        if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None
    }
    assert exported == MODULE_RESOURCES
    for name in MODULE_RESOURCES:
        assert hasattr(openai.OpenAI, name), name  # a resource of the sync client
        assert name in vars(openai), name  # re-exported by openai/__init__.py


def _codes(source: str) -> list[tuple[int, str]]:
    return [(i.line, i.code) for i in check_source(source)]


def test_a_local_class_shadowing_the_import_is_not_the_client() -> None:
    source = (
        "from openai import Client\n"
        "async def f(Client):\n"
        "    Client().chat.completions.create(model='m', messages=[])\n"
        "async def g():\n"
        "    Client().chat.completions.create(model='m', messages=[])\n"
    )
    assert _codes(source) == [(5, "OA102")]


def test_two_imports_of_one_name_are_unknown() -> None:
    source = (
        "from openai import Client\n"
        "from httpx import Client\n"
        "async def f():\n"
        "    Client().chat.completions.create(model='m', messages=[])\n"
    )
    assert _codes(source) == []


def test_the_module_client_only_for_its_resources() -> None:
    source = (
        "import openai\n"
        "async def f():\n"
        "    openai.ChatCompletion.create(model='m', messages=[])\n"
        "    await openai.ChatCompletion.acreate(model='m', messages=[])\n"
        "    openai.chat.completions.create(model='m', messages=[])\n"
    )
    assert _codes(source) == [(5, "OA102")]
