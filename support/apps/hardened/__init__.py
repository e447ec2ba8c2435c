"""The hardened reference service: the template to copy (see ``service`` for the tour).

    python -m support.apps.hardened          # uvicorn with the connection limits (see __main__)
    uvicorn support.apps.hardened:app        # the same app, with whatever limits the flags give

Reads ``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` (the SDK's own variables), callers'
tokens from ``SERVICE_TOKENS``, and the rest from ``SERVICE_*`` (see ``settings``).
"""

from .service import create_app
from .settings import ConfigError, Settings

app = create_app()

__all__ = ["ConfigError", "Settings", "app", "create_app"]
