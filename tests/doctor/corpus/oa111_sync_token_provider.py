"""OA111: a sync token provider given to AsyncAzureOpenAI."""

import openai
from azure.identity import DefaultAzureCredential, ManagedIdentityCredential, get_bearer_token_provider
from openai import AsyncAzureOpenAI

SCOPE = "https://cognitiveservices.azure.com/.default"
credential = DefaultAzureCredential()

direct = AsyncAzureOpenAI(
    azure_endpoint="https://x.openai.azure.com",
    api_version="2024-10-21",
    azure_ad_token_provider=get_bearer_token_provider(credential, SCOPE),  # expect: OA111
)

provider = get_bearer_token_provider(ManagedIdentityCredential(), SCOPE)
named = openai.AsyncAzureOpenAI(azure_ad_token_provider=provider, api_version="2024-10-21")  # expect: OA111


def token() -> str:
    return credential.get_token(SCOPE).token


hand_written = AsyncAzureOpenAI(azure_ad_token_provider=token, api_version="2024-10-21")  # expect: OA111


def make_client() -> AsyncAzureOpenAI:
    def refresh() -> str:
        access = credential.get_token(SCOPE)
        return access.token

    return AsyncAzureOpenAI(azure_ad_token_provider=refresh, api_version="2024-10-21")  # expect: OA111
