"""support.installed: where a function is defined, what a package's files contain, what its metadata says."""

from __future__ import annotations

import importlib
import importlib.metadata
import importlib.util
import json
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.installed import (
    Distribution,
    defined_in,
    distribution,
    functions_mentioning,
    requirements,
    search_package,
    source_lines,
)

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


def test_distribution_reads_the_installed_metadata() -> None:
    nest = distribution("nest_asyncio")
    assert nest.name == "nest-asyncio" and nest.version == importlib.metadata.version("nest_asyncio")
    assert nest.author and nest.home_page and nest.home_page.startswith("https://")
    assert nest.newest_python is not None and nest.newest_python >= (3, 8)


def test_newest_python_compares_as_a_version_not_as_text() -> None:
    meta = importlib.metadata.metadata("nest-asyncio2")
    listed = [c for c in meta.get_all("Classifier") or [] if c.startswith("Programming Language :: Python :: 3.")]
    newest = max(tuple(map(int, c.rsplit(" :: ", 1)[1].split("."))) for c in listed)
    assert distribution("nest-asyncio2").newest_python == newest
    assert (3, 10) > (3, 9)  # the reason it is a tuple: "3.10" < "3.9" as text


def test_str_reads_as_one_line() -> None:
    text = str(Distribution("pkg", "1.0", "Ann Author", "https://example.org/pkg", (3, 12)))
    assert text == "pkg 1.0: author Ann Author, home page https://example.org/pkg, classifiers up to Python 3.12"
    assert str(Distribution("pkg", "1.0", None, None, None)).endswith("classifiers up to Python none listed")


def test_a_missing_distribution_raises() -> None:
    with pytest.raises(importlib.metadata.PackageNotFoundError):
        distribution("no-such-distribution-for-this-test")


def test_requirements_with_a_prefix() -> None:
    every = requirements("ipykernel")
    nest = requirements("ipykernel", prefix="nest")
    assert nest and set(nest) <= set(every) and all(r.startswith("nest") for r in nest)


def test_functions_mentioning_looks_at_the_module_s_own_functions_only(tmp_path: Path) -> None:
    path = tmp_path / "probe_module.py"
    path.write_text(
        "from support.installed import distribution as imported  # another module's function: never reported\n"
        "\n\ndef applies():\n    nest_asyncio2.apply()\n\n\ndef other():\n    return 1\n"
    )
    spec = importlib.util.spec_from_file_location("probe_module", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert functions_mentioning(module, "nest_asyncio2.apply()") == ["applies"]
    assert functions_mentioning(module, "return 1") == ["other"]
    assert functions_mentioning(module, "def") == ["applies", "other"]
    assert functions_mentioning(module, "not in any function") == []


def test_source_lines_are_numbered_as_in_the_file_that_defines_the_function(package: types.ModuleType) -> None:
    chat = importlib.import_module(f"{PACKAGE}.resources.chat")
    file_lines = Path(chat.__file__).read_text().splitlines()
    found = source_lines(chat.Completions.plain, "def plain", "return 1")
    assert [line for _, line in found] == ["    def plain(self):", "        return 1"]
    assert all(file_lines[number - 1] == line for number, line in found)
    assert source_lines(chat.Completions.plain, "not in it") == []


def test_source_lines_needs_a_fragment() -> None:
    with pytest.raises(ValueError, match="at least one fragment"):
        source_lines(source_lines)
