"""Configuration of the bundled upstream, from arguments or ``UPSTREAM_*`` variables."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_MODELS = ["gpt-4o-mini", "gpt-4.1-mini", "gpt-5-mini", "gpt-5-nano"]


class UpstreamSettings(BaseSettings):
    """How the bundled upstream behaves. Every field can be set as ``UPSTREAM_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="UPSTREAM_", frozen=True)

    latency: float = Field(0.5, ge=0, description="seconds a plain (non-streamed) call takes")
    ttft: float = Field(0.2, ge=0, description="seconds until a stream's first chunk")
    latency_p99: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="spread latencies: each request's is drawn, seeded, from a lognormal whose median is `latency` "
        "and whose 99th percentile is this (its TTFT scaled alike); unset: every request takes `latency`",
    )
    chunk_delay: float = Field(0.02, ge=0, description="seconds between stream chunks")
    reply_tokens: int = Field(16, ge=1, le=4096, description="length of a reply the model 'finishes'")
    seed: int = Field(0, description="seed of the deterministic replies and ids")
    api_key: SecretStr | None = Field(None, description="the only bearer key accepted; unset accepts any non-empty key")
    fault: str | None = Field(None, description="a fault applied to every request (see faults.py)")
    models: list[str] = Field(
        default_factory=lambda: list(DEFAULT_MODELS), description="models served; empty serves any"
    )
    max_body_bytes: int = Field(1_048_576, ge=1, description="larger request bodies get 413")
    max_hang: float = Field(300.0, ge=0, description="upper bound of the 'hang' fault, in seconds")
    capacity: int | None = Field(
        None,
        ge=1,
        description="generations in progress at once; more wait their turn (queued, not refused); unset: no limit",
    )
    rate_limit_requests: int | None = Field(
        None, ge=1, description="requests per window per API key (the real RPM at a 60 s window); unset: no limit"
    )
    rate_limit_tokens: int | None = Field(
        None, ge=1, description="tokens per window per API key (the real TPM at a 60 s window); unset: no limit"
    )
    rate_limit_window: float = Field(
        60.0,
        gt=0,
        allow_inf_nan=False,
        description="seconds in which an emptied bucket refills, continuously (60: per minute)",
    )
    keep_alive: float = Field(
        5.0,
        gt=0,
        allow_inf_nan=False,
        description="seconds an idle connection stays open before the server closes it (uvicorn's 5)",
    )
    stale_after: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description="a middlebox's idle timeout: a request on a connection idle longer than this is not answered",
    )
    stale_mode: Literal["reset", "silent"] = Field(
        "reset", description="what a stale connection does to a request: 'reset' (an RST) or 'silent' (no answer)"
    )
    created: int = Field(
        1_767_225_600, description="the fixed 'created' timestamp of replies, for reproducible outputs"
    )

    @model_validator(mode="after")
    def _p99_above_the_median(self) -> UpstreamSettings:
        if self.latency_p99 is not None and not 0 < self.latency <= self.latency_p99:
            raise ValueError(
                f"latency_p99 ({self.latency_p99}) needs a latency above 0 and at most latency_p99 "
                f"(got latency {self.latency})"
            )
        return self
