"""Stand-ins built from the SDK's own types, so a test checks what the service reads and sends.

`chat_completion` validates its fields with ``ChatCompletion.model_validate``: the service
then meets a real ``ChatCompletion`` and a misspelled attribute fails as in production.
`FakeOpenAI.create` binds its arguments to the SDK's own ``AsyncCompletions.create``
signature, so a misspelled parameter is a ``TypeError`` here too. The error builders give
real ``openai`` exceptions carrying real ``httpx2`` responses. `KEY` is the dummy key
every test uses.
"""

import inspect
from typing import Any

import httpx2
import openai
from openai.resources.chat.completions import AsyncCompletions
from openai.types.chat import ChatCompletion

KEY = "sk-test-not-a-real-key"  # the only key the tests know: the upstream is started requiring it
REQUEST = httpx2.Request("POST", "https://api.openai.com/v1/chat/completions")


def completion_json(text: str, *, prompt_tokens: int = 20, completion_tokens: int = 9) -> dict[str, Any]:
    """A chat completion as the API sends it."""
    return {
        "id": "chatcmpl-test",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": "gpt-4o-mini",
        "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text, "refusal": None}}
        ],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def chat_completion(text: str, **usage: int) -> ChatCompletion:
    """The same, as the SDK's type (validated: a wrong field name or type fails here)."""
    return ChatCompletion.model_validate(completion_json(text, **usage))


def rate_limit_error(retry_after: str = "7") -> openai.RateLimitError:
    response = httpx2.Response(429, headers={"retry-after": retry_after}, request=REQUEST)
    return openai.RateLimitError("Rate limit reached", response=response, body=None)


def timeout_error() -> openai.APITimeoutError:
    return openai.APITimeoutError(request=REQUEST)


class FakeOpenAI:
    """Stands in for ``AsyncOpenAI`` where the service uses it: ``client.chat.completions.create``."""

    def __init__(self, reply: ChatCompletion | openai.APIError) -> None:
        self.reply = reply
        self.calls: list[dict[str, Any]] = []

    @property
    def chat(self) -> "FakeOpenAI":
        return self

    @property
    def completions(self) -> "FakeOpenAI":
        return self

    async def create(self, **kwargs: Any) -> ChatCompletion:
        inspect.signature(AsyncCompletions.create).bind(self, **kwargs)  # TypeError, as the SDK would raise
        self.calls.append(kwargs)
        if isinstance(self.reply, openai.APIError):
            raise self.reply
        return self.reply
