"""Function tools and ``tool_choice``, for both endpoints, and which calls a reply makes.

Only function tools are served: hosted tools (web search, file search, code
interpreter...) and custom (free-form) tools are refused with a plain message, since
nothing here could act them out. A function's ``parameters`` must be an object schema,
and a strict function's schema must obey strict mode, as the real API insists.

Which calls the 'model' makes (`planned_calls`), deterministically:

- ``tool_choice`` naming a function: that one function, once;
- ``"required"``: every offered function once, or only the first with
  ``parallel_tool_calls=false``;
- ``"auto"`` (the default with tools): the same as required, unless the conversation
  ends with a tool result, in which case the model answers in text, as a model reading
  the tool's output would;
- ``"none"``: no call.

``allowed_tools`` narrows the offered functions and ``max_tool_calls`` (Responses) caps
the count. The arguments are a seeded instance of the function's parameters schema.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from . import checks
from .errors import UpstreamError, empty_array, invalid_type, invalid_value, missing, not_served
from .formats import check_schema

Mode = Literal["none", "auto", "required"]
MODES: tuple[Mode, ...] = ("none", "auto", "required")
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
CHAT_TOOL_TYPES = ("function", "custom")
RESPONSES_TOOL_TYPES = (
    "function",
    "file_search",
    "computer_use_preview",
    "web_search",
    "web_search_preview",
    "mcp",
    "code_interpreter",
    "image_generation",
    "local_shell",
    "shell",
    "custom",
    "apply_patch",
)


@dataclass(frozen=True)
class Tool:
    """A function the model may call."""

    name: str
    parameters: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None

    def echo(self) -> dict[str, Any]:
        """The tool as a response object repeats it (Responses normalises ``strict`` to true)."""
        return {
            "type": "function",
            "name": self.name,
            "description": self.description,
            "parameters": self.parameters,
            "strict": True if self.strict is None else self.strict,
        }


@dataclass(frozen=True)
class ToolChoice:
    """How the model must use the tools."""

    mode: Mode = "auto"
    forced: str | None = None  # a function the model must call
    allowed: tuple[str, ...] | None = None  # allowed_tools: the only functions it may call
    echo: Any = "auto"  # as a response object repeats it


NO_TOOLS = ToolChoice("none", echo="none")


# --- tools ------------------------------------------------------------------------------------


def chat_tools(body: checks.Body) -> tuple[Tool, ...]:
    """``tools`` of a chat request: ``[{"type": "function", "function": {...}}]``."""
    items = checks.array(body, "tools", non_empty=True) or []
    tools = []
    for i, item in enumerate(items):
        param = f"tools[{i}]"
        kind = _tool_type(item, param, CHAT_TOOL_TYPES)
        if kind != "function":
            raise not_served(f"{param}.type", f"'{kind}' tools (function tools only)")
        spec = checks.obj(item, "function", param=f"{param}.function")
        if spec is None:
            raise missing(f"{param}.function")
        tools.append(_function(spec, f"{param}.function"))
    return tuple(tools)


def responses_tools(body: checks.Body) -> tuple[Tool, ...]:
    """``tools`` of a responses request: ``[{"type": "function", "name": ..., "parameters": ...}]``."""
    items = checks.array(body, "tools") or []
    tools = []
    for i, item in enumerate(items):
        param = f"tools[{i}]"
        kind = _tool_type(item, param, RESPONSES_TOOL_TYPES)
        if kind != "function":
            raise not_served(f"{param}.type", f"'{kind}' tools (function tools only)")
        tools.append(_function(item, param))
    return tuple(tools)


def _tool_type(item: Any, param: str, known: tuple[str, ...]) -> str:
    if not isinstance(item, dict):
        raise invalid_type(param, "an object", item)
    kind = checks.choice(item, "type", known, param=f"{param}.type")
    if kind is None:
        raise missing(f"{param}.type")
    return kind


def _function(spec: dict[str, Any], param: str) -> Tool:
    name = checks.required_string(spec, "name", param=f"{param}.name")
    if not NAME.match(name):
        raise UpstreamError(
            400,
            f"Invalid '{param}.name': string does not match pattern. Expected a string that matches the "
            "pattern '^[a-zA-Z0-9_-]+$'.",
            param=f"{param}.name",
            code="invalid_value",
        )
    parameters = checks.obj(spec, "parameters", param=f"{param}.parameters")
    strict = checks.boolean(spec, "strict", param=f"{param}.strict") if spec.get("strict") is not None else None
    description = checks.string(spec, "description", param=f"{param}.description")
    _check_parameters(name, parameters, strict=bool(strict), param=f"{param}.parameters")
    return Tool(name, parameters, strict, description)


def _check_parameters(name: str, schema: dict[str, Any] | None, *, strict: bool, param: str) -> None:
    if schema is None:
        return
    kind = schema.get("type", "object")
    if kind != "object":
        raise UpstreamError(
            400,
            f"Invalid schema for function '{name}': schema must be a JSON Schema of 'type: \"object\"', "
            f"got 'type: \"{kind}\"'.",
            param=param,
            code="invalid_function_parameters",
        )
    check_schema(schema, strict=strict, label=f"function '{name}'", param=param, code="invalid_function_parameters")


# --- tool_choice -------------------------------------------------------------------------------


def chat_tool_choice(body: checks.Body, tools: tuple[Tool, ...]) -> ToolChoice:
    """``tool_choice`` of a chat request (a mode, ``{"type": "function", "function": {"name"}}`` or allowed_tools)."""
    value = body.get("tool_choice")
    if value is None:
        return ToolChoice() if tools else NO_TOOLS
    if not tools:
        raise UpstreamError(
            400,
            "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are specified.",
            param="tool_choice",
        )
    if isinstance(value, str):
        return ToolChoice(_mode(value, "tool_choice"), echo=value)
    if not isinstance(value, dict):
        raise invalid_type("tool_choice", "a string or an object", value)
    kind = checks.choice(value, "type", ("function", "allowed_tools", "custom"), param="tool_choice.type")
    if kind == "function":
        spec = checks.obj(value, "function", param="tool_choice.function") or {}
        name = checks.required_string(spec, "name", param="tool_choice.function.name")
        return _forced(name, tools, "tool_choice.function.name", value)
    if kind == "allowed_tools":
        allowed = checks.obj(value, "allowed_tools", param="tool_choice.allowed_tools")
        if allowed is None:
            raise missing("tool_choice.allowed_tools")
        return _allowed(allowed, tools, "tool_choice.allowed_tools", value, nested=True)
    if kind == "custom":
        raise not_served("tool_choice.type", "custom tools (function tools only)")
    raise missing("tool_choice.type")


def responses_tool_choice(body: checks.Body, tools: tuple[Tool, ...]) -> ToolChoice:
    """``tool_choice`` of a responses request (a mode, ``{"type": "function", "name"}`` or allowed_tools)."""
    value = body.get("tool_choice")
    if value is None:
        return ToolChoice()
    if isinstance(value, str):
        return ToolChoice(_mode(value, "tool_choice"), echo=value)
    if not isinstance(value, dict):
        raise invalid_type("tool_choice", "a string or an object", value)
    kind = checks.required_string(value, "type", param="tool_choice.type")
    if kind == "function":
        name = checks.required_string(value, "name", param="tool_choice.name")
        return _forced(name, tools, "tool_choice.name", value)
    if kind == "allowed_tools":
        return _allowed(value, tools, "tool_choice", value, nested=False)
    raise not_served("tool_choice.type", f"a tool_choice of type '{kind}' (function tools only)")


def _mode(value: str, param: str) -> Mode:
    if value not in MODES:
        raise invalid_value(param, value, MODES)
    return value


def _forced(name: str, tools: tuple[Tool, ...], param: str, echo: Any) -> ToolChoice:
    if name not in {tool.name for tool in tools}:
        raise UpstreamError(
            400,
            f"Invalid value for '{param}': function '{name}' is not among the functions in 'tools'.",
            param=param,
            code="invalid_value",
        )
    return ToolChoice("required", forced=name, echo=echo)


def _allowed(spec: dict[str, Any], tools: tuple[Tool, ...], param: str, echo: Any, *, nested: bool) -> ToolChoice:
    mode = checks.choice(spec, "mode", ("auto", "required"), param=f"{param}.mode") or "auto"
    names = []
    for i, item in enumerate(checks.array(spec, "tools", param=f"{param}.tools", non_empty=True) or []):
        if not isinstance(item, dict):
            raise invalid_type(f"{param}.tools[{i}]", "an object", item)
        holder = (checks.obj(item, "function", param=f"{param}.tools[{i}].function") or {}) if nested else item
        name = checks.required_string(holder, "name", param=f"{param}.tools[{i}].name")
        names.append(_forced(name, tools, f"{param}.tools[{i}].name", echo).forced or name)
    if not names:
        raise empty_array(f"{param}.tools")
    return ToolChoice(_mode(mode, f"{param}.mode"), allowed=tuple(names), echo=echo)


# --- what the model does ------------------------------------------------------------------------


def planned_calls(
    tools: tuple[Tool, ...],
    choice: ToolChoice,
    *,
    parallel: bool,
    after_tool_result: bool,
    most: int | None = None,
) -> tuple[Tool, ...]:
    """The functions a reply calls, in order (empty: the reply is text). See the module docstring."""
    if not tools or choice.mode == "none":
        return ()
    if choice.forced is not None:
        return tuple(tool for tool in tools if tool.name == choice.forced)[:1]
    if choice.mode == "auto" and after_tool_result:
        return ()
    offered = [tool for tool in tools if choice.allowed is None or tool.name in choice.allowed]
    calls = offered if parallel else offered[:1]
    return tuple(calls if most is None else calls[:most])
