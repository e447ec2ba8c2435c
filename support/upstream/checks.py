"""Checks of single request parameters, answered with the real API's wording.

Each reads one field of a JSON object and returns its value (or the default when the
field is absent or null), or raises the `UpstreamError` the real API would answer
with. ``param`` is the dotted path the error names (``stream_options.include_usage``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .errors import UpstreamError, empty_array, invalid_type, invalid_value, missing, out_of_range, too_long

Body = Mapping[str, Any]

METADATA_MAX_PAIRS = 16
METADATA_MAX_KEY = 64
METADATA_MAX_VALUE = 512


def integer(
    body: Body, name: str, *, param: str | None = None, minimum: int | None = None, maximum: int | None = None
) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    param = param or name
    if isinstance(value, bool) or not isinstance(value, int):
        raise invalid_type(param, "an integer", value)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        raise out_of_range(param, value, minimum=minimum, maximum=maximum)
    return value


def number(body: Body, name: str, *, low: float, high: float, param: str | None = None) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    param = param or name
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise invalid_type(param, "a number", value)
    if not low <= value <= high:  # NaN cannot arrive: the JSON decoder refuses it
        raise out_of_range(param, value, minimum=low, maximum=high, kind="decimal")
    return float(value)


def boolean(body: Body, name: str, *, param: str | None = None, default: bool = False, nullable: bool = True) -> bool:
    """A boolean; null means the default unless the real API refuses null (``parallel_tool_calls``)."""
    if name not in body or (body[name] is None and nullable):
        return default
    value = body[name]
    if not isinstance(value, bool):
        raise invalid_type(param or name, "a boolean", value)
    return value


def string(body: Body, name: str, *, param: str | None = None, max_length: int | None = None) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    param = param or name
    if not isinstance(value, str):
        raise invalid_type(param, "a string", value)
    if max_length is not None and len(value) > max_length:
        raise too_long(param, len(value), max_length)
    return value


def required_string(body: Body, name: str, *, param: str | None = None) -> str:
    value = string(body, name, param=param)
    if value is None:
        raise missing(param or name)
    return value


def choice(body: Body, name: str, values: Sequence[str], *, param: str | None = None) -> str | None:
    """One of `values` (an enum parameter), or None when absent."""
    value = body.get(name)
    if value is None:
        return None
    param = param or name
    if not isinstance(value, str):
        raise invalid_type(param, "a string", value)
    if value not in values:
        raise invalid_value(param, value, values)
    return value


def obj(body: Body, name: str, *, param: str | None = None) -> dict[str, Any] | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_type(param or name, "an object", value)
    return value


def array(body: Body, name: str, *, param: str | None = None, non_empty: bool = False) -> list[Any] | None:
    value = body.get(name)
    if value is None:
        return None
    param = param or name
    if not isinstance(value, list):
        raise invalid_type(param, "an array", value)
    if non_empty and not value:
        raise empty_array(param)
    return value


def metadata(body: Body, name: str = "metadata") -> dict[str, str] | None:
    """Up to 16 string pairs, keys up to 64 characters and values up to 512 (the real API's limits)."""
    value = obj(body, name)
    if value is None:
        return None
    if len(value) > METADATA_MAX_PAIRS:
        raise UpstreamError(
            400,
            f"Invalid '{name}': too many properties. Expected an object with at most {METADATA_MAX_PAIRS} "
            f"properties, but got an object with {len(value)} properties instead.",
            param=name,
            code="object_above_max_properties",
        )
    for key in value:
        if len(key) > METADATA_MAX_KEY:
            raise too_long(f"{name}.{key}", len(key), METADATA_MAX_KEY)
        string(value, key, param=f"{name}.{key}", max_length=METADATA_MAX_VALUE)
    return dict(value)


def stop_sequences(body: Body, name: str = "stop", *, most: int = 4) -> tuple[str, ...]:
    """``stop``: a string or up to four strings."""
    value = body.get(name)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if not isinstance(value, list):
        raise invalid_type(name, "a string or an array of strings", value)
    if len(value) > most:
        raise too_long(name, len(value), most, what="array")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise invalid_type(f"{name}[{i}]", "a string", item)
    return tuple(item for item in value if item)


def string_array(body: Body, name: str, values: Sequence[str]) -> tuple[str, ...]:
    """An array of enum strings (``include``)."""
    items = array(body, name) or []
    for i, item in enumerate(items):
        choice({"v": item}, "v", values, param=f"{name}[{i}]")
    return tuple(items)
