"""Azure clients, their token providers built lazily by a getter."""

from azure.identity import DefaultAzureCredential, get_bearer_token_provider
from azure.identity.aio import DefaultAzureCredential as AsyncCredential
from azure.identity.aio import get_bearer_token_provider as async_provider
from openai import AsyncAzureOpenAI

SCOPE = "https://cognitiveservices.azure.com/.default"
_provider = None
_async_provider = None


def _token_provider():
    global _provider
    if _provider is None:
        _provider = get_bearer_token_provider(DefaultAzureCredential(), SCOPE)
    return _provider


def _async_token_provider():
    global _async_provider
    if _async_provider is None:
        _async_provider = async_provider(AsyncCredential(), SCOPE)
    return _async_provider


def blocking_client() -> AsyncAzureOpenAI:
    return AsyncAzureOpenAI(azure_ad_token_provider=_token_provider(), api_version="2024-10-21")  # expect: OA111


def async_client() -> AsyncAzureOpenAI:
    return AsyncAzureOpenAI(azure_ad_token_provider=_async_token_provider(), api_version="2024-10-21")
