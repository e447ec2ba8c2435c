"""The reply's format: plain text, any JSON object, or JSON valid for a schema.

Chat Completions asks with ``response_format``, Responses with ``text.format``; both end
up as an `OutputFormat`. A strict schema must obey the strict-mode rules (see
`schemas.strict_problem`), and ``json_object`` needs the word "json" somewhere in the
prompt, as the real API insists.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from . import checks
from .errors import UpstreamError, invalid_type, missing
from .schemas import MAX_DEPTH, depth, strict_problem

Kind = Literal["text", "json_object", "json_schema"]
KINDS: tuple[Kind, ...] = ("text", "json_object", "json_schema")
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
VERBOSITIES = ("low", "medium", "high")


@dataclass(frozen=True)
class OutputFormat:
    """What the reply's text must be."""

    kind: Kind = "text"
    name: str = ""
    schema: Any = None
    strict: bool | None = None
    description: str | None = None

    def echo(self) -> dict[str, Any]:
        """The format as a response object repeats it in ``text.format``."""
        if self.kind != "json_schema":
            return {"type": self.kind}
        echoed: dict[str, Any] = {"type": "json_schema", "name": self.name, "schema": self.schema}
        echoed["strict"] = self.strict if self.strict is not None else False
        if self.description is not None:
            echoed["description"] = self.description
        return echoed


TEXT = OutputFormat()


def chat_format(body: checks.Body) -> OutputFormat:
    """``response_format`` of a chat request."""
    value = checks.obj(body, "response_format")
    if value is None:
        return TEXT
    kind = _kind(value, "response_format.type")
    if kind != "json_schema":
        return OutputFormat(kind)
    spec = checks.obj(value, "json_schema", param="response_format.json_schema")
    if spec is None:
        raise missing("response_format.json_schema")
    return _schema_format(
        spec, "response_format.json_schema", error_param="response_format", code=None, schema_required=False
    )


def responses_format(body: checks.Body) -> tuple[OutputFormat, str]:
    """``text.format`` and ``text.verbosity`` of a responses request."""
    text = checks.obj(body, "text") or {}
    verbosity = checks.choice(text, "verbosity", VERBOSITIES, param="text.verbosity") or "medium"
    value = checks.obj(text, "format", param="text.format")
    if value is None:
        return TEXT, verbosity
    kind = _kind(value, "text.format.type")
    if kind != "json_schema":
        return OutputFormat(kind), verbosity
    schema_format = _schema_format(
        value, "text.format", error_param="text.format.schema", code="invalid_json_schema", schema_required=True
    )
    return schema_format, verbosity


def require_json_word(fmt: OutputFormat, prompt_text: str, *, api: str) -> None:
    """The real API refuses ``json_object`` unless the prompt mentions JSON (else a model may loop on whitespace)."""
    if fmt.kind != "json_object" or "json" in prompt_text.lower():
        return
    if api == "chat":
        raise UpstreamError(
            400,
            "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.",
            param="messages",
        )
    raise UpstreamError(
        400,
        "Response input messages must contain the word 'json' in some form to use 'text.format' of type 'json_object'.",
        param="input",
    )


def _kind(value: dict[str, Any], param: str) -> Kind:
    kind = checks.choice(value, "type", KINDS, param=param)
    if kind is None:
        raise missing(param)
    return kind  # type: ignore[return-value]  # checked against KINDS


def _schema_format(
    spec: dict[str, Any], prefix: str, *, error_param: str, code: str | None, schema_required: bool
) -> OutputFormat:
    """A json_schema format; chat may omit the schema (any JSON object then), Responses may not."""
    name = checks.required_string(spec, "name", param=f"{prefix}.name")
    if not NAME.match(name):
        raise UpstreamError(
            400,
            f"Invalid '{prefix}.name': string does not match pattern. Expected a string that matches the "
            "pattern '^[a-zA-Z0-9_-]+$'.",
            param=f"{prefix}.name",
            code="invalid_value",
        )
    schema = spec.get("schema")
    if schema is None and schema_required:
        raise missing(f"{prefix}.schema")
    if schema is not None and not isinstance(schema, dict):
        raise invalid_type(f"{prefix}.schema", "an object", schema)
    strict = checks.boolean(spec, "strict", param=f"{prefix}.strict", default=False) if "strict" in spec else None
    description = checks.string(spec, "description", param=f"{prefix}.description")
    check_schema(schema, strict=bool(strict), label=f"response_format '{name}'", param=error_param, code=code)
    return OutputFormat("json_schema", name, schema, strict, description)


def check_schema(schema: Any, *, strict: bool, label: str, param: str, code: str | None) -> None:
    """Refuse a schema nested too deeply to walk, or one strict mode does not allow."""
    if schema is None:
        return
    if depth(schema) > MAX_DEPTH:
        raise UpstreamError(
            400,
            f"Invalid schema for {label}: the bundled upstream walks schemas up to {MAX_DEPTH} levels deep.",
            param=param,
            code=code,
        )
    problem = strict_problem(schema) if strict else None
    if problem:
        raise UpstreamError(400, f"Invalid schema for {label}: {problem}", param=param, code=code)
