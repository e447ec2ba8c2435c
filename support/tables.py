"""Aligned plain-text tables: the one formatter behind every table a notebook prints."""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["text_table"]


def text_table(rows: Sequence[Sequence[str]], *, numeric_from: int = 1, rule: bool = False) -> str:
    """`rows` (the first one the header) as columns two spaces apart.

    Columns before `numeric_from` are left-aligned, the rest right-aligned (numbers line
    up); `rule` draws a line of dashes under the header. Trailing blanks are dropped.
    """
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            cell.ljust(width) if i < numeric_from else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    if rule:
        lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
