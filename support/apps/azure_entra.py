"""Azure OpenAI with Microsoft Entra ID tokens, from an async FastAPI service.

``AsyncAzureOpenAI`` calls its ``azure_ad_token_provider`` before every request, on the
event loop, and awaits what it returns only when that is awaitable
(``openai/lib/azure.py``, ``AsyncAzureOpenAI._get_azure_ad_token``). So in an async
service the provider must come from ``azure.identity.aio``. The one from
``azure.identity`` is synchronous: when its cached token is missing or due for refresh,
it fetches a new one (a round trip to Entra ID or the instance metadata service, or a
subprocess for ``AzureCliCredential``) while the whole loop waits.

The fix, in a real service::

    from azure.identity.aio import DefaultAzureCredential, get_bearer_token_provider

    credential = DefaultAzureCredential()  # close it at shutdown: await credential.close()
    app = create_app(get_bearer_token_provider(credential, SCOPE))

The client reads ``AZURE_OPENAI_ENDPOINT`` and ``OPENAI_API_VERSION``; the deployment,
which Azure routes by (not the body's ``model``), is ``AZURE_OPENAI_DEPLOYMENT``.
"""

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, Request
from openai import AsyncAzureOpenAI

from .schemas import ChatReply, ChatRequest

SCOPE = "https://cognitiveservices.azure.com/.default"  # the Entra ID scope of Azure OpenAI
TokenProvider = Callable[[], str | Awaitable[str]]


def deployment_name() -> str:
    """The deployment to call: ``$AZURE_OPENAI_DEPLOYMENT`` or gpt-4o-mini."""
    return os.environ.get("AZURE_OPENAI_DEPLOYMENT", "gpt-4o-mini")


async def get_client(request: Request) -> AsyncAzureOpenAI:
    return request.app.state.openai


def create_app(token_provider: TokenProvider) -> FastAPI:
    """The service, authenticating with `token_provider` (async: the fix; sync: blocks the loop)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncAzureOpenAI(azure_ad_token_provider=token_provider) as client:
            app.state.openai = client
            yield

    app = FastAPI(title="Azure OpenAI with Entra ID tokens", lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/chat")
    async def chat(body: ChatRequest, client: Annotated[AsyncAzureOpenAI, Depends(get_client)]) -> ChatReply:
        completion = await client.chat.completions.create(
            model=deployment_name(), messages=[{"role": "user", "content": body.prompt}]
        )
        return ChatReply(text=completion.choices[0].message.content or "")

    return app
