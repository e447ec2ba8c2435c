"""Azure OpenAI's URL shape and credentials, so ``AsyncAzureOpenAI`` can talk to the bundled upstream.

Given ``azure_endpoint``, the SDK's Azure clients (``openai/lib/azure.py``) send a chat
completion to ``{endpoint}/openai/deployments/{deployment}/chat/completions`` and other
calls to ``{endpoint}/openai/{path}``, always with ``?api-version=...``, and authenticate
with an ``api-key`` header (a key) or ``Authorization: Bearer`` (a Microsoft Entra ID
token). Azure routes by the deployment in the path: the body's ``model`` is not what runs.

This module maps such a request onto the OpenAI route it stands for, and answers a
mistake the way Azure does, with its shorter error body ``{"error": {"code", "message"}}``
and the wording users report (a missing ``api-version``: MicrosoftDocs/azure-docs#114602;
an unknown deployment: ``DeploymentNotFound``; a wrong key: 401 "Access denied ...").
The bundled upstream accepts its one key either way, as an ``api-key`` or as a bearer token.
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from .errors import UpstreamError

_DEPLOYMENT_ROUTE = re.compile(r"^/openai/deployments/(?P<deployment>[^/]+)(?P<rest>/chat/completions)$")
_PLAIN_ROUTES = {"/openai/models": "/v1/models", "/openai/responses": "/v1/responses"}

DEPLOYMENT_NOT_FOUND = (
    "The API deployment for this resource does not exist. "
    "If you created the deployment within the last 5 minutes, please wait a moment and try again."
)
ACCESS_DENIED = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key "
    "for an active subscription and use a correct regional API endpoint for your resource."
)


class AzureError(UpstreamError):
    """An error in Azure OpenAI's shape: ``{"error": {"code": ..., "message": ...}}``."""

    def __init__(self, status: int, message: str, *, code: str) -> None:
        super().__init__(status, message, code=code)

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


@dataclass(frozen=True)
class AzureRoute:
    """An Azure-shaped request: the OpenAI path it stands for, its deployment and api-version."""

    openai_path: str
    deployment: str | None  # None for the calls that are not routed by deployment (models, responses)
    api_version: str | None  # None when the query had none; `check` refuses it then

    def check(self) -> None:
        """Refuse a request without ``api-version`` as Azure does: 404 ``Resource not found``."""
        if not self.api_version:
            raise AzureError(404, "Resource not found", code="404")


def azure_route(path: str, query_string: bytes) -> AzureRoute | None:
    """The Azure route `path` names, or None when it is not an Azure-shaped path."""
    versions = parse_qs(query_string.decode("latin-1")).get("api-version", [])
    api_version = versions[0] if versions else None
    match = _DEPLOYMENT_ROUTE.match(path)
    if match is not None:
        return AzureRoute("/v1" + match["rest"], match["deployment"], api_version)
    if path in _PLAIN_ROUTES:
        return AzureRoute(_PLAIN_ROUTES[path], None, api_version)
    return None


def azure_key(headers: dict[bytes, bytes], expected: str | None) -> str:
    """The credential of an Azure-shaped request: its ``api-key``, else its bearer token.

    `expected` is the one key the upstream accepts (None: any non-empty credential).
    """
    scheme, _, token = headers.get(b"authorization", b"").decode("latin-1").partition(" ")
    bearer = token.strip() if scheme.lower() == "bearer" else ""
    key = headers.get(b"api-key", b"").decode("latin-1").strip() or bearer
    if not key or (expected is not None and not hmac.compare_digest(key.encode(), expected.encode())):
        raise AzureError(401, ACCESS_DENIED, code="401")
    return key


def check_deployment(deployment: str, served: list[str]) -> None:
    """Refuse a deployment the upstream does not serve (its deployments are its model names)."""
    if served and deployment not in served:
        raise AzureError(404, DEPLOYMENT_NOT_FOUND, code="DeploymentNotFound")
