"""OpenAI-shaped errors: ``{"error": {"message", "type", "param", "code"}}``.

The helpers below reproduce the real API's wording for each kind of mistake, so an
SDK user sees here the message they would get from the real service (checked against
reports of real API errors; where the real wording is not known, the message says it
comes from the bundled upstream).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class UpstreamError(Exception):
    """An error the upstream answers with, shaped like the OpenAI API's own."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type: str = "invalid_request_error",
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def invalid_type(param: str, expected: str, value: Any) -> UpstreamError:
    return UpstreamError(
        400,
        f"Invalid type for '{param}': expected {expected}, but got {json_type(value)} instead.",
        param=param,
        code="invalid_type",
    )


def missing(param: str) -> UpstreamError:
    return UpstreamError(400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def invalid_value(param: str, value: Any, supported: Sequence[str]) -> UpstreamError:
    """``Invalid value: 'x'. Supported values are: 'a', 'b', and 'c'.`` (the real API's enum error)."""
    return UpstreamError(
        400,
        f"Invalid value: {quoted(value)}. Supported values are: {enumeration(supported)}.",
        param=param,
        code="invalid_value",
    )


def out_of_range(
    param: str, value: float, *, minimum: float | None = None, maximum: float | None = None, kind: str = "integer"
) -> UpstreamError:
    """``Invalid 'n': integer above maximum value. Expected a value <= 128, but got 130 instead.``

    `kind` is the parameter's type ("integer", or "decimal" for a number such as temperature).
    """
    if minimum is not None and value < minimum:
        where, bound, code = "below minimum", f">= {minimum:g}", f"{kind}_below_min_value"
    else:
        where, bound, code = "above maximum", f"<= {maximum:g}", f"{kind}_above_max_value"
    return UpstreamError(
        400,
        f"Invalid '{param}': {kind} {where} value. Expected a value {bound}, but got {value!r} instead.",
        param=param,
        code=code,
    )


def empty_array(param: str) -> UpstreamError:
    return UpstreamError(
        400,
        f"Invalid '{param}': empty array. Expected an array with minimum length 1, but got an empty array instead.",
        param=param,
        code="empty_array",
    )


def too_long(param: str, length: int, maximum: int, *, what: str = "string") -> UpstreamError:
    """``Invalid 'stop': array too long. Expected an array with maximum length 4, but got ...``"""
    article = "a string" if what == "string" else "an array"
    return UpstreamError(
        400,
        f"Invalid '{param}': {what} too long. Expected {article} with maximum length {maximum}, "
        f"but got {article} with length {length} instead.",
        param=param,
        code=f"{what}_above_max_length",
    )


def only_with(param: str, requirement: str, *, code: str | None = None) -> UpstreamError:
    """``The 'top_logprobs' parameter is only allowed when 'logprobs' is enabled.``"""
    return UpstreamError(400, f"The '{param}' parameter is only allowed when {requirement}.", param=param, code=code)


def unsupported_parameter(param: str) -> UpstreamError:
    """The real API's answer to a parameter the model does not take (``max_tokens`` on o-series...)."""
    hint = " Use 'max_completion_tokens' instead." if param == "max_tokens" else ""
    return UpstreamError(
        400,
        f"Unsupported parameter: '{param}' is not supported with this model.{hint}",
        param=param,
        code="unsupported_parameter",
    )


def unsupported_default_only(param: str, value: Any) -> UpstreamError:
    """The real API's answer to ``temperature=0.2`` on a reasoning model."""
    return UpstreamError(
        400,
        f"Unsupported value: '{param}' does not support {value!r} with this model. "
        "Only the default (1) value is supported.",
        param=param,
        code="unsupported_value",
    )


def not_served(param: str, what: str) -> UpstreamError:
    """A feature the real API has and the bundled upstream does not emulate: say so plainly."""
    return UpstreamError(400, f"The bundled upstream does not serve {what}.", param=param, code="unsupported_value")


def quoted(value: Any) -> str:
    """A value as the real API quotes it in messages: strings in single quotes, the rest as JSON."""
    if isinstance(value, str):
        return f"'{value}'"
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else repr(value) if isinstance(value, (int, float)) else json_type(value)


def enumeration(values: Sequence[str]) -> str:
    """``'a', 'b', and 'c'`` / ``'a' and 'b'``, the way the real API lists supported values."""
    items = [f"'{v}'" for v in values]
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + f", and {items[-1]}"


def json_type(value: Any) -> str:
    """The JSON type name the OpenAI API uses in its messages ("an integer", "a string"...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"
