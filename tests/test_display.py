"""support.display: the source of the code that runs, highlighted for notebooks, plain for text."""

from __future__ import annotations

import inspect

from IPython.core.formatters import format_display_data

import support.apps.fix_async_client
from support.display import source
from support.target import connect


def test_source_shows_the_module_source_without_latex() -> None:
    module = support.apps.fix_async_client
    data, _ = format_display_data(source(module))
    # IPython's plain-text formatter drops the file's final newline; nothing else changes.
    assert data["text/plain"].rstrip("\n") == inspect.getsource(module).rstrip("\n")
    assert source(module).data == inspect.getsource(module)
    assert "text/latex" not in data
    assert "text/html" in data  # highlighted for notebooks


def test_source_of_a_function() -> None:
    data, _ = format_display_data(source(connect))
    assert data["text/plain"].startswith("def connect(")
    assert "text/latex" not in data
