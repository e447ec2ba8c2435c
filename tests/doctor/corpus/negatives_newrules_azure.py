"""Negatives for OA111: async providers, the sync client, and providers that hand back a coroutine."""

from azure.identity import DefaultAzureCredential
from azure.identity import get_bearer_token_provider as sync_provider
from azure.identity.aio import DefaultAzureCredential as AsyncCredential
from azure.identity.aio import get_bearer_token_provider
from openai import AsyncAzureOpenAI, AzureOpenAI

SCOPE = "https://cognitiveservices.azure.com/.default"
credential = AsyncCredential()

fine = AsyncAzureOpenAI(azure_ad_token_provider=get_bearer_token_provider(credential, SCOPE), api_version="2024-10-21")


async def token() -> str:
    return (await credential.get_token(SCOPE)).token


async_def = AsyncAzureOpenAI(azure_ad_token_provider=token, api_version="2024-10-21")
sync_client = AzureOpenAI(
    azure_ad_token_provider=sync_provider(DefaultAzureCredential(), SCOPE), api_version="2024-10-21"
)


def hands_back_a_coroutine():
    return token()


deferred = AsyncAzureOpenAI(azure_ad_token_provider=hands_back_a_coroutine, api_version="2024-10-21")


def from_env() -> str:
    return "token-from-a-file"


static = AsyncAzureOpenAI(azure_ad_token_provider=from_env, api_version="2024-10-21")


def build(provider) -> AsyncAzureOpenAI:
    return AsyncAzureOpenAI(azure_ad_token_provider=provider, api_version="2024-10-21")
