"""JSON Schema, as far as structured output needs it: strict-mode rules and a valid instance.

Two jobs, both for ``response_format``/``text.format`` json_schema and for function tools:

- `strict_problem` finds the first reason a schema is not allowed in strict mode, in the
  real API's words (``In context=('properties', 'a'), 'additionalProperties' is required
  to be supplied and to be false.``), so a schema the real API refuses is refused here too.
- `make_instance` builds a small, seeded value valid for the schema where that is simple
  (types, properties and required, enum/const, anyOf/oneOf/allOf, $ref to $defs,
  numeric bounds and multipleOf, string lengths and common formats, minItems). Patterns
  and the rarer keywords are not honoured; the result is then the closest simple value.

Schemas arrive from clients, so every walk is bounded (depth, items, string length) and
nothing here raises on a strange schema: the worst case is a less fitting value.
"""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from .patterns import sample
from .vocabulary import WORDS

MAX_DEPTH = 32  # levels of a schema walked; a client's schema nested deeper is refused (`depth`)
SHALLOW = 6  # above this depth an instance fills optional parts too; below it, only what is required
MAX_ITEMS = 16  # minItems / minProperties honoured up to this count
MAX_STRING = 256  # minLength honoured up to this length
MAX_REF_HOPS = 16
# Values one instance may build: a schema that nests big arrays through "$ref": "#" would
# otherwise ask for MAX_ITEMS ** MAX_DEPTH of them (a client could stall the server with one).
MAX_VALUES = 10_000
T = TypeVar("T")

FORMATS = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "00:00:00Z",
    "duration": "PT1S",
    "email": "reader@example.com",
    "idn-email": "reader@example.com",
    "hostname": "example.com",
    "idn-hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "uri": "https://example.com/",
    "uri-reference": "https://example.com/",
    "iri": "https://example.com/",
    "url": "https://example.com/",
}


# --- limits -------------------------------------------------------------------------------


def depth(value: Any) -> int:
    """How many containers deep `value` is nested, counted without recursion."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH * 4:  # far past any limit: stop counting
            return deepest
        stack.extend((child, level + 1) for child in children)
    return deepest


# --- strict mode ----------------------------------------------------------------------------


def strict_problem(schema: Any) -> str | None:
    """The first reason `schema` is not a valid strict schema, worded like the real API, or None."""
    if not isinstance(schema, dict):
        return "schema must be a JSON Schema of 'type: \"object\"', got a non-object schema."
    if schema.get("type", "object") != "object":
        return f"schema must be a JSON Schema of 'type: \"object\"', got 'type: \"{schema.get('type')}\"'."
    for context, node in _subschemas(schema, ()):
        problem = _strict_object_problem(node)
        if problem:
            return f"In context={context!r}, {problem}"
    return None


def _strict_object_problem(node: dict[str, Any]) -> str | None:
    if node.get("type") != "object" and "properties" not in node:
        return None
    if node.get("additionalProperties") is not False:
        return "'additionalProperties' is required to be supplied and to be false."
    properties = _field(node, "properties", dict, {})
    required = _field(node, "required", list, [])
    absent = [key for key in properties if key not in required]
    if absent:
        return (
            "'required' is required to be supplied and to be an array including every key in properties. "
            f"Missing '{absent[0]}'."
        )
    return None


def _subschemas(node: Any, context: tuple[str, ...]) -> Iterator[tuple[tuple[str, ...], dict[str, Any]]]:
    """Every schema object under `node` with its path, depth first, bounded by MAX_DEPTH."""
    if not isinstance(node, dict) or len(context) > 2 * MAX_DEPTH:
        return
    yield context, node
    for key in ("properties", "$defs", "definitions"):
        children = node.get(key)
        if isinstance(children, dict):
            for name, child in children.items():
                yield from _subschemas(child, (*context, key, name))
    if isinstance(node.get("items"), dict):
        yield from _subschemas(node["items"], (*context, "items"))
    for key in ("anyOf", "oneOf", "allOf", "prefixItems"):
        alternatives = node.get(key)
        if isinstance(alternatives, list):
            for i, child in enumerate(alternatives):
                yield from _subschemas(child, (*context, key, str(i)))


# --- instances ---------------------------------------------------------------------------------


def make_instance(schema: Any, rng: random.Random) -> Any:
    """A seeded value valid for `schema` where that is simple (see the module docstring)."""
    return _Instance(schema, rng).value(schema, 0)


class _Instance:
    def __init__(self, root: Any, rng: random.Random) -> None:
        self.root = root
        self.rng = rng
        self.retry = 0  # > 0 while looking for a different array item (uniqueItems)
        self.left = MAX_VALUES  # values this instance may still build before it answers with words

    def value(self, schema: Any, level: int) -> Any:
        if schema is False:
            return None  # nothing is valid; null is the least surprising answer
        self.left -= 1
        if not isinstance(schema, dict) or level > MAX_DEPTH or self.left < 0:
            return self.word()
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        enum = schema.get("enum")
        if isinstance(enum, list) and enum:
            return self.rng.choice(enum)
        alternatives = schema.get("anyOf", schema.get("oneOf"))
        if isinstance(alternatives, list) and alternatives:
            return self.value(_preferred(alternatives, deep=level >= SHALLOW), level + 1)
        if isinstance(schema.get("allOf"), list):
            return self.value(self.merged(schema), level + 1)
        return self.typed(schema, _type_of(schema), level)

    def typed(self, schema: dict[str, Any], kind: str, level: int) -> Any:
        if kind == "object":
            return self.object(schema, level)
        if kind == "array":
            return self.array(schema, level)
        if kind in ("integer", "number"):
            return _number(schema, self.rng, integral=kind == "integer", offset=self.retry)
        if kind == "boolean":
            return self.rng.random() < 0.5
        if kind == "null":
            return None
        return self.string(schema)

    def object(self, schema: dict[str, Any], level: int) -> dict[str, Any]:
        properties = _field(schema, "properties", dict, {})
        required = [r for r in _field(schema, "required", list, []) if isinstance(r, str)]
        names = list(properties) if level < SHALLOW else [name for name in properties if name in required]
        result = {name: self.value(properties[name], level + 1) for name in names}
        extra = schema.get("additionalProperties", {})
        for name in required:
            if name not in result:
                result[name] = self.value(extra if isinstance(extra, dict) else {}, level + 1)
        wanted = _count(schema.get("minProperties"), MAX_ITEMS)
        while len(result) < wanted and extra is not False:
            result[f"{self.word()}_{len(result)}"] = self.value(extra if isinstance(extra, dict) else {}, level + 1)
        return result

    def array(self, schema: dict[str, Any], level: int) -> list[Any]:
        prefix = _field(schema, "prefixItems", list, [])
        items = schema.get("items", {})
        count = max(_count(schema.get("minItems"), MAX_ITEMS), 1 if level < SHALLOW else 0)
        most = schema.get("maxItems")
        if isinstance(most, int) and not isinstance(most, bool):
            count = max(0, min(count, most))
        result: list[Any] = []
        for i in range(count):
            item_schema = prefix[i] if i < len(prefix) else items
            candidate = self.value(item_schema, level + 1)
            for self.retry in range(1, 9 if schema.get("uniqueItems") is True else 1):
                if candidate not in result:
                    break
                candidate = self.value(item_schema, level + 1)
            self.retry = 0
            result.append(candidate)
        return result

    def string(self, schema: dict[str, Any]) -> str:
        form, pattern = schema.get("format"), schema.get("pattern")
        if isinstance(pattern, str) and (matching := sample(pattern, self.rng)) is not None:
            return matching
        text = FORMATS.get(form, "") if isinstance(form, str) else ""
        if form == "uuid":
            text = str(uuid.UUID(int=self.rng.getrandbits(128), version=4))
        text = text or self.words()
        shortest, longest = _count(schema.get("minLength"), MAX_STRING), schema.get("maxLength")
        if len(text) < shortest:
            text += "x" * (shortest - len(text))
        if isinstance(longest, int) and not isinstance(longest, bool) and longest >= 0:
            text = text[:longest]
        return text

    def word(self) -> str:
        return self.rng.choice(WORDS)

    def words(self) -> str:
        return " ".join(self.word() for _ in range(self.rng.randint(1, 3)))

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        """Follow ``$ref`` (JSON pointers into the root: ``#/$defs/X``), keeping sibling keywords."""
        for _ in range(MAX_REF_HOPS):
            ref = schema.get("$ref")
            if not isinstance(ref, str):
                return schema
            target = _pointer(self.root, ref)
            siblings = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **siblings} if isinstance(target, dict) else siblings
        return {k: v for k, v in schema.items() if k != "$ref"}

    def merged(self, schema: dict[str, Any]) -> dict[str, Any]:
        """``allOf`` folded into one schema: properties merged, required joined, the rest overlaid."""
        result: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        for part in _field(schema, "allOf", list, []):
            if not isinstance(part, dict):
                continue
            part = self.resolve(part)
            properties = {**_field(result, "properties", dict, {}), **_field(part, "properties", dict, {})}
            required = [*_field(result, "required", list, []), *_field(part, "required", list, [])]
            result = {**part, **result, "properties": properties, "required": required}
        return result


def _preferred(alternatives: list[Any], *, deep: bool) -> Any:
    """The first alternative that is not just null (a model fills an Optional field); deep in a
    recursive schema, the null one if there is one, so the instance ends."""
    nulls = [a for a in alternatives if isinstance(a, dict) and a.get("type") == "null"]
    if deep and nulls:
        return nulls[0]
    return next((a for a in alternatives if not any(a is n for n in nulls)), alternatives[0])


def _type_of(schema: dict[str, Any]) -> str:
    kind = schema.get("type")
    if isinstance(kind, list):
        named = [k for k in kind if isinstance(k, str)]
        kind = next((k for k in named if k != "null"), named[0] if named else None)
    if isinstance(kind, str):
        return kind
    if any(k in schema for k in ("properties", "required", "additionalProperties", "minProperties")):
        return "object"
    if any(k in schema for k in ("items", "prefixItems", "minItems", "maxItems")):
        return "array"
    if any(k in schema for k in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf")):
        return "number"
    return "string"


def _number(schema: dict[str, Any], rng: random.Random, *, integral: bool, offset: int = 0) -> int | float:
    """A seeded number inside the schema's bounds, a multiple of multipleOf where that is simple.

    `offset` moves the guess up, so repeated calls can find distinct values for uniqueItems.
    """
    raw_step = schema.get("multipleOf")
    step: float | None = raw_step if isinstance(raw_step, (int, float)) and not isinstance(raw_step, bool) else None
    if step is not None and (step <= 0 or (integral and step != int(step))):
        step = None  # a non-integral step for an integer is not simple: bounds only
    fallback: int | float = rng.randint(1, 9) if integral else rng.randint(1, 99) / 10
    try:
        span = _Span.of(schema)
        value = span.pick(fallback + offset * (step or 1), integral)
        if step is not None:
            value = span.multiple(value, step, integral)
        return value if math.isfinite(value) else fallback
    except (OverflowError, ValueError, ZeroDivisionError, TypeError):
        return fallback


@dataclass(frozen=True)
class _Span:
    """A schema's numeric bounds, each possibly open (exclusive)."""

    low: float | None
    low_open: bool
    high: float | None
    high_open: bool

    @classmethod
    def of(cls, schema: dict[str, Any]) -> _Span:
        low, low_open = _limit(schema, "minimum", "exclusiveMinimum", lower=True)
        high, high_open = _limit(schema, "maximum", "exclusiveMaximum", lower=False)
        return cls(low, low_open, high, high_open)

    def fits(self, value: float) -> bool:
        above = self.low is None or (value > self.low if self.low_open else value >= self.low)
        below = self.high is None or (value < self.high if self.high_open else value <= self.high)
        return above and below

    def pick(self, guess: int | float, integral: bool) -> int | float:
        """`guess` when it fits, else the nearest simple value inside (the middle for two float bounds)."""
        if self.fits(guess):
            return guess
        if integral:
            if self.low is not None:
                lowest = math.floor(self.low) + 1 if self.low_open else math.ceil(self.low)
                if self.fits(lowest) or self.high is None:
                    return lowest
            assert self.high is not None
            return math.ceil(self.high) - 1 if self.high_open else math.floor(self.high)
        if self.low is not None and self.high is not None:
            return (self.low + self.high) / 2
        if self.low is not None:
            return self.low + 1 if self.low_open else self.low
        assert self.high is not None
        return self.high - 1 if self.high_open else self.high

    def multiple(self, value: int | float, step: float, integral: bool) -> int | float:
        """A multiple of `step` next to `value`, inside the span if one of the two neighbours is."""
        up, down = math.ceil(value / step) * step, math.floor(value / step) * step
        chosen = up if self.fits(up) or not self.fits(down) else down
        return int(chosen) if integral else float(chosen)


def _limit(schema: dict[str, Any], inclusive: str, exclusive: str, *, lower: bool) -> tuple[float | None, bool]:
    """The tightest bound on one side and whether it is open (draft 4's boolean exclusive* included)."""
    bounds: list[tuple[float, bool]] = []
    if _is_number(schema.get(inclusive)):
        bounds.append((schema[inclusive], schema.get(exclusive) is True))
    if _is_number(schema.get(exclusive)):
        bounds.append((schema[exclusive], True))
    if not bounds:
        return None, False
    # the tightest: the highest lower bound (open first on a tie), the lowest upper bound
    return max(bounds) if lower else min(bounds, key=lambda b: (b[0], not b[1]))


def _pointer(root: Any, ref: str) -> Any:
    if not ref.startswith("#"):
        return {}
    node = root
    for raw in ref[1:].split("/")[1:] if ref != "#" else []:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return {}
    return node


def _count(value: Any, cap: int) -> int:
    """A minimum count from the schema (minItems, minLength...), at most `cap`; 0 when absent."""
    if isinstance(value, int) and not isinstance(value, bool):
        return max(0, min(value, cap))
    return 0


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _field(schema: dict[str, Any], key: str, kind: type[T], default: T) -> T:
    """`schema[key]` when it has the expected JSON type, else `default` (client schemas can hold anything)."""
    value = schema.get(key)
    return value if isinstance(value, kind) else default
