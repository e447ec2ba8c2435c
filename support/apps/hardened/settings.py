"""The service's configuration, read from the environment with pydantic-settings.

The upstream's key and address use the SDK's own variables (``OPENAI_API_KEY``,
``OPENAI_BASE_URL``), so the service runs wherever the SDK does. Everything else is
``SERVICE_*``. Lists are comma-separated: ``SERVICE_TOKENS=tok-a,tok-b``.

The door's limits come in two kinds. The gate (``gate.py``) enforces
``SERVICE_MAX_BODY_BYTES`` and ``SERVICE_BODY_TIMEOUT_S`` wherever the app runs. The
connection limits (``SERVICE_MAX_HEADER_BYTES``, ``SERVICE_KEEP_ALIVE_S``,
``SERVICE_MAX_CONNECTIONS``, ``SERVICE_BACKLOG``) are uvicorn's options: ``python -m
support.apps.hardened`` passes them (see ``__main__``); under a bare ``uvicorn ...``
command line they are whatever that command line says.
"""

from __future__ import annotations

from typing import Annotated, Literal, TypedDict
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ConfigError(RuntimeError):
    """The service can't start with this configuration. The message never holds a secret."""


class Settings(BaseSettings):
    # hide_input_in_errors: a malformed value must not print itself (it may be a token).
    model_config = SettingsConfigDict(env_prefix="SERVICE_", hide_input_in_errors=True, extra="ignore")

    # Who may call the service: its own bearer tokens, never the OpenAI key.
    tokens: Annotated[list[SecretStr], NoDecode] = Field(default_factory=list)

    # The upstream, through the SDK's own variables.
    openai_api_key: SecretStr | None = Field(default=None, validation_alias="OPENAI_API_KEY")
    openai_base_url: str | None = Field(default=None, validation_alias="OPENAI_BASE_URL")

    # Cost guards.
    model: str = Field(default="gpt-4o-mini", validation_alias=AliasChoices("SERVICE_MODEL", "OPENAI_MODEL"))
    allowed_models: Annotated[list[str], NoDecode] = Field(default_factory=list)  # empty: just `model`
    max_body_bytes: int = Field(default=64 * 1024, gt=0)
    max_output_tokens: int = Field(default=1024, gt=0)

    # Time: each attempt is bounded by the timeouts, the whole request by the deadline.
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=30.0, gt=0)
    # SERVICE_DEADLINE_S bounds a request's upstream work end to end, from the moment it has
    # a slot: all attempts and backoff, and a stream through its last event.
    deadline_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=2, ge=0)
    # SERVICE_STREAM_IDLE_TIMEOUT_S: the longest a started stream may go without a chunk (the
    # first one included) before it ends with an error event. The read timeout can't say
    # this: any byte resets it, a keep-alive comment included. 30 s, like the read timeout.
    stream_idle_timeout_s: float = Field(default=30.0, gt=0)
    # SERVICE_STREAM_HEARTBEAT_S: while a started stream waits for its first chunk (a model
    # that thinks before it speaks), an SSE comment (`: ping`) every this many seconds, so a
    # proxy's idle read timeout (nginx's proxy_read_timeout, 60 s by default) does not cut
    # it. Only before the first chunk: after it, silence is the upstream stalling, which the
    # idle timeout above ends. 15 s, FastAPI's own SSE keep-alive interval; 0 turns it off.
    stream_heartbeat_s: float = Field(default=15.0, ge=0)
    # SERVICE_GRACEFUL_SHUTDOWN_S: on SIGTERM, how long calls and streams in flight may take
    # to finish before uvicorn cancels them (its timeout_graceful_shutdown; without it, it
    # waits for ever: for every stream, and for a client that never sends its body). 8 s is
    # under `docker stop`'s 10 s and Kubernetes' 30 s grace periods, so the service exits on
    # its own (streams cut, upstream streams closed, the client closed) before a SIGKILL.
    # Read by `python -m support.apps.hardened`; a bare `uvicorn` takes --timeout-graceful-shutdown.
    graceful_shutdown_s: int = Field(default=8, ge=0)

    # The HTTP client under the SDK: aiohttp (``openai[aiohttp]``), or the SDK's default httpx2.
    http_transport: Literal["aiohttp", "httpx"] = "aiohttp"

    # Load shedding: calls in flight, callers allowed to wait, and for how long.
    max_concurrency: int = Field(default=64, gt=0)
    max_queue: int = Field(default=64, ge=0)
    queue_timeout_s: float = Field(default=2.0, ge=0)

    # Ask the upstream once at startup whether the key works (one cheap models call).
    startup_probe: bool = False

    # SERVICE_BODY_TIMEOUT_S: the whole body must arrive within this time, else 408. Without
    # it a client trickling one byte a second holds a connection and a task for ever.
    body_timeout_s: float = Field(default=10.0, gt=0)

    # Connection limits, passed to uvicorn by `python -m support.apps.hardened` (__main__.py).
    # SERVICE_MAX_HEADER_BYTES: the request line and headers together (h11's
    # max_incomplete_event_size; h11's own default). A head still incomplete past it is a
    # 400 from uvicorn; one that arrives whole in a single read (asyncio reads up to 256 KiB)
    # is parsed, so no connection buffers more than about 256 KiB of head.
    max_header_bytes: int = Field(default=16 * 1024, ge=1024)
    # SERVICE_KEEP_ALIVE_S: how long a connection may go without sending a complete request
    # head: idle after a response, idle after connecting, or trickling its headers.
    keep_alive_s: int = Field(default=5, gt=0)
    # SERVICE_MAX_CONNECTIONS: uvicorn's limit_concurrency (open connections and requests in
    # progress); past it uvicorn answers 503 and new connections are closed at once. Keep it
    # above SERVICE_MAX_CONCURRENCY + SERVICE_MAX_QUEUE, so the service's own 503 comes first.
    max_connections: int = Field(default=512, gt=0)
    # SERVICE_BACKLOG: connections the kernel may queue before the server accepts them.
    backlog: int = Field(default=2048, gt=0)

    # SERVICE_DOCS=true serves /docs, /redoc and /openapi.json (behind the service token,
    # like every path but the probes). Off by default: the schema maps every route for an
    # outsider. Read when create_app() builds the app, not when it starts (see docs_routes).
    docs: bool = False

    @field_validator("tokens", "allowed_models", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @property
    def models(self) -> frozenset[str]:
        """The models a caller may ask for."""
        return frozenset(self.allowed_models or [self.model])

    def check(self) -> None:
        """Fail fast, naming the variable and never its value."""
        key = self.openai_api_key.get_secret_value() if self.openai_api_key else ""
        if not key.strip():
            raise ConfigError("OPENAI_API_KEY is missing or blank: set it to the upstream's API key")
        if key != key.strip():
            raise ConfigError(
                "OPENAI_API_KEY has leading or trailing whitespace (a stray newline from a secrets file?)"
            )
        tokens = [token.get_secret_value() for token in self.tokens]
        if not tokens:
            raise ConfigError("SERVICE_TOKENS is empty: the service would accept no caller")
        if key in tokens:
            raise ConfigError("SERVICE_TOKENS contains the OpenAI key: give callers their own tokens")
        if self.model not in self.models:
            raise ConfigError(f"SERVICE_MODEL {self.model!r} is not in SERVICE_ALLOWED_MODELS")
        if self.openai_base_url is not None:
            _check_base_url(self.openai_base_url)


def _check_base_url(url: str) -> None:
    """An http(s) URL with a host and no ``user:password@``; the messages never quote it.

    Credentials in the URL would travel in every request (and make each one fail: the
    SDK authenticates with the key), and the URL is what ends up in logs and errors.
    """
    try:
        parts = urlsplit(url.strip())
        _ = parts.port  # raises ValueError on a port that is not a number
    except ValueError:
        raise ConfigError("OPENAI_BASE_URL is not a valid URL") from None
    if parts.username is not None or parts.password is not None:
        raise ConfigError(
            "OPENAI_BASE_URL contains credentials (user:password@): remove them; the key goes in OPENAI_API_KEY"
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError("OPENAI_BASE_URL must be an http:// or https:// URL with a host")


class DocsRoutes(TypedDict):
    docs_url: str | None
    redoc_url: str | None
    openapi_url: str | None


class _DocsSwitch(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SERVICE_", extra="ignore")

    docs: bool = False


def docs_routes(settings: Settings | None) -> DocsRoutes:
    """FastAPI's ``docs_url``, ``redoc_url`` and ``openapi_url``: all None unless SERVICE_DOCS is on.

    FastAPI adds these routes when the app is built (``FastAPI.setup``), so the switch is
    read then: from `settings`, or from the environment alone when the app reads its
    settings at startup. A malformed value there leaves the docs off; startup then
    refuses it with the other settings.
    """
    if settings is not None:
        on = settings.docs
    else:
        try:
            on = _DocsSwitch().docs
        except ValidationError:
            on = False
    if not on:
        return {"docs_url": None, "redoc_url": None, "openapi_url": None}
    return {"docs_url": "/docs", "redoc_url": "/redoc", "openapi_url": "/openapi.json"}
