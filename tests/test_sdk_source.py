"""sdk_source: which file defines a function, and what a package's source files contain."""

from __future__ import annotations

import importlib
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.sdk_source import defined_in, search_package

PACKAGE = "runbook_sdk_source_fixture"


@pytest.fixture
def package(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[types.ModuleType]:
    """A package whose ``create`` is wrapped by a decorator living in another file, as the SDK's are."""
    root = tmp_path / PACKAGE
    (root / "resources").mkdir(parents=True)
    (root / "__init__.py").write_text(
        "import functools\n\n\ndef checked(f):\n    @functools.wraps(f)\n"
        "    def wrapper(*args):\n        return f(*args)\n\n    return wrapper\n"
    )
    (root / "resources" / "__init__.py").write_text("")
    (root / "resources" / "chat.py").write_text(
        f"from {PACKAGE} import checked\n\n\n"
        "class CompletionCreateParams:\n    class NestedCompletionCreate:  # indented: not a top-level class\n"
        "        pass\n\n\n"
        "class Completions:\n    '''Has no ChatCompletionCreate, only mentions it.'''\n\n"
        "    @checked\n    def create(self, x):\n        return x\n\n    def plain(self):\n        return 1\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    yield importlib.import_module(PACKAGE)
    for name in [n for n in sys.modules if n == PACKAGE or n.startswith(PACKAGE + ".")]:
        del sys.modules[name]


def test_search_package_reads_every_file(package: types.ModuleType) -> None:
    found = search_package(package, "ChatCompletionCreate", class_pattern=r"\w*CompletionCreate\w*")
    assert found.files == 3
    assert found.mentions == [f"{PACKAGE}/resources/chat.py"]
    assert found.classes == ["CompletionCreateParams"]  # defined at the top of a line, once each


def test_search_package_finds_nothing_that_is_not_there(package: types.ModuleType) -> None:
    found = search_package(package, "ChatCompletionCreateX", class_pattern=r"ChatCompletionCreate")
    assert (found.mentions, found.classes) == ([], [])


def test_search_package_on_the_standard_library() -> None:
    found = search_package(json, "class JSONDecodeError", class_pattern=r"JSONDecodeError")
    assert found.mentions == ["json/decoder.py"] and found.classes == ["JSONDecodeError"]


def test_defined_in_names_the_wrapper_s_file_for_a_wrapped_method(package: types.ModuleType) -> None:
    chat = importlib.import_module(f"{PACKAGE}.resources.chat")
    completions = chat.Completions()
    assert defined_in(completions.create) == f"{PACKAGE}/__init__.py"  # where the wrapper lives
    assert defined_in(completions.plain) == f"{PACKAGE}/resources/chat.py"


def test_a_module_without_files_is_an_error() -> None:
    with pytest.raises(ValueError, match="no source files"):
        search_package(types.ModuleType("nowhere"), "x", class_pattern="x")
