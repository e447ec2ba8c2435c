"""The service's configuration, read from the environment with pydantic-settings.

The upstream's key and address use the SDK's own variables (``OPENAI_API_KEY``,
``OPENAI_BASE_URL``), so the service runs wherever the SDK does. Everything else is
``SERVICE_*``. Lists are comma-separated: ``SERVICE_TOKENS=tok-a,tok-b``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, field_validator
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
    deadline_s: float = Field(default=60.0, gt=0)
    max_retries: int = Field(default=2, ge=0)

    # The HTTP client under the SDK: aiohttp (``openai[aiohttp]``), or the SDK's default httpx2.
    http_transport: Literal["aiohttp", "httpx"] = "aiohttp"

    # Load shedding: calls in flight, callers allowed to wait, and for how long.
    max_concurrency: int = Field(default=64, gt=0)
    max_queue: int = Field(default=64, ge=0)
    queue_timeout_s: float = Field(default=2.0, ge=0)

    # Ask the upstream once at startup whether the key works (one cheap models call).
    startup_probe: bool = False

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
