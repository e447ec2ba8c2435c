"""support.distributions: installed packages' metadata, read locally (notebook 05's maintenance facts)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
from pathlib import Path

import pytest

from support.distributions import Distribution, distribution, functions_mentioning, requirements


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
        "from support.distributions import distribution as imported  # another module's function: never reported\n"
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
