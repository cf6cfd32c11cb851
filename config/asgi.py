"""The ASGI application: the pages (Django) and the gateway (`/v1/`) in one process.

`uvicorn config.asgi:application` serves both. Requests under `/v1/` go straight to the
gateway's own ASGI application (`gateway.proxy.Gateway`), ahead of Django's request handling
and middleware, which an API call does not need (see gateway/proxy.py); everything else is
Django's. The ASGI lifespan starts the gateway's call recorder and, at a clean shutdown,
writes the calls it still holds.
"""

import os
from typing import Any

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
django_application = get_asgi_application()

from gateway.proxy import Gateway  # noqa: E402  (needs Django set up)

gateway = Gateway()


async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
    kind = scope["type"]
    if kind == "http" and scope["path"].startswith("/v1/"):
        await gateway(scope, receive, send)
    elif kind == "lifespan":
        await gateway.lifespan(scope, receive, send)
    else:
        await django_application(scope, receive, send)
