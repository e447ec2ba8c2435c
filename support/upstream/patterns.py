"""A seeded string that matches a simple regular expression (a JSON Schema ``pattern``).

Structured output must satisfy ``pattern`` constraints such as pydantic's
``Field(pattern=r"^\\d{5}$")``. This walks the parse tree of Python's own regex parser
and emits literals, character classes (``\\d``, ``\\w``, ranges, negations), repeats at
their minimum (or once), the first branch of an alternation and group references. The
result is checked with `re.search`; anything unusual (lookarounds that fail, huge
repeats, parser internals changing) yields None and the caller falls back to words.
"""

from __future__ import annotations

import importlib
import random
import re
import string
from typing import Any

_parser: Any = importlib.import_module("re._parser")  # the stdlib's regex parser (no public API)

MAX_REPEAT_EMITTED = 64
CATEGORY_CHARS = {
    "CATEGORY_DIGIT": string.digits,
    "CATEGORY_WORD": string.ascii_letters + string.digits + "_",
    "CATEGORY_SPACE": " ",
    "CATEGORY_NOT_DIGIT": string.ascii_letters,
    "CATEGORY_NOT_WORD": "-. ",
    "CATEGORY_NOT_SPACE": string.ascii_letters + string.digits,
}
NEGATED_CANDIDATES = string.ascii_lowercase + string.digits + string.ascii_uppercase + "_- ."


def sample(pattern: str, rng: random.Random) -> str | None:
    """A string `re.search(pattern, ...)` accepts, or None when this cannot make one."""
    try:
        text = _Emitter(rng).emit(list(_parser.parse(pattern)))
        return text if re.search(pattern, text) else None
    except Exception:  # a pattern too unusual for this walk: the caller falls back
        return None


class _Emitter:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.groups: dict[int, str] = {}

    def emit(self, items: list[Any]) -> str:
        return "".join(self.one(str(op), arg) for op, arg in items)

    def one(self, op: str, arg: Any) -> str:
        if op == "LITERAL":
            return chr(arg)
        if op == "NOT_LITERAL":
            return "a" if arg != ord("a") else "b"
        if op == "ANY":
            return self.rng.choice(string.ascii_lowercase)
        if op == "IN":
            return self.member(list(arg))
        if op in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
            low, high, items = arg
            count = low if low > 0 else min(high, 1)
            if count > MAX_REPEAT_EMITTED:
                raise ValueError("repeat too long")
            return "".join(self.emit(list(items)) for _ in range(count))
        if op in ("SUBPATTERN", "ATOMIC_GROUP"):
            group, items = (arg[0], arg[-1]) if op == "SUBPATTERN" else (None, arg)
            text = self.emit(list(items))
            if group is not None:
                self.groups[group] = text
            return text
        if op == "BRANCH":
            return self.emit(list(arg[1][0]))
        if op == "GROUPREF":
            return self.groups.get(arg, "")
        if op in ("AT", "ASSERT", "ASSERT_NOT"):
            return ""
        raise ValueError(f"unsupported regex construct {op}")

    def member(self, items: list[Any]) -> str:
        """A character of a class ``[...]``: the first alternative, or any character outside a negation."""
        if items and str(items[0][0]) == "NEGATE":
            refused = items[1:]
            return next(c for c in NEGATED_CANDIDATES if not any(_contains(str(op), arg, c) for op, arg in refused))
        op, arg = str(items[0][0]), items[0][1]
        if op == "LITERAL":
            return chr(arg)
        if op == "RANGE":
            return chr(self.rng.randint(arg[0], arg[1]))
        if op == "CATEGORY":
            return self.rng.choice(CATEGORY_CHARS[str(arg)])
        raise ValueError(f"unsupported class member {op}")


def _contains(op: str, arg: Any, char: str) -> bool:
    if op == "LITERAL":
        return bool(ord(char) == arg)
    if op == "RANGE":
        return bool(arg[0] <= ord(char) <= arg[1])
    if op == "CATEGORY":
        name = str(arg)
        positive = name.replace("_NOT", "")
        inside = char in CATEGORY_CHARS[positive] or (positive == "CATEGORY_SPACE" and char.isspace())
        return inside != (name != positive)
    return True  # unknown member: treat as refused, so the candidate is not used
