"""`/healthz` for load balancers and monitoring: is this web process able to serve?

It answers 200 when the database and the cache work, 503 when either fails, with a JSON body
that gives each part's state: the database (`SELECT 1`), the cache (a set and a get), the task
queue (reachable, and how many tasks wait) and the task consumer (how long ago one last
reported; it says "stale" after a few minutes of silence, "never" if none ever did). A stopped
consumer or an unreachable queue does not fail the check: the pages still work, and taking
this web process out of the pool would not bring them back; alert on `consumer` instead.

It needs no sign-in, names no secret, host or error message, and costs one query and two cache
calls. `HealthCheckMiddleware` answers it ahead of the other middleware: before the host check
(a load balancer probes by address) and the https redirect (it probes over plain http), and
without loading a session.
"""

import logging
import secrets
from collections.abc import Callable
from typing import Any

from django.core.cache import cache
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from lib.taskqueue import heartbeat_read, queue_pending

logger = logging.getLogger(__name__)

HEALTH_PATH = "/healthz"
OK = "ok"
FAILING = "failing"


def _database() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return OK


def _cache() -> str:
    key = f"tablero:healthz:{secrets.token_hex(8)}"
    cache.set(key, "1", timeout=10)
    found = cache.get(key) == "1"
    cache.delete(key)
    return OK if found else FAILING


def _check(name: str, probe: Callable[[], str]) -> str:
    try:
        return probe()
    except Exception as error:  # whatever the backend raises: report it, never a 500
        # The class only: a driver's message may name hosts or users.
        logger.warning("Health check: the %s failed (%s).", name, type(error).__name__)
        return FAILING


def health_report() -> tuple[bool, dict[str, Any]]:
    """Whether this process can serve (database and cache work), and each part's state."""
    report: dict[str, Any] = {
        "database": _check("database", _database),
        "cache": _check("cache", _cache),
    }
    try:
        pending = queue_pending()
        heartbeat = heartbeat_read()
    except Exception as error:
        logger.warning("Health check: the task queue failed (%s).", type(error).__name__)
        report.update(queue=FAILING, consumer="unknown", heartbeat_age_seconds=None)
    else:
        age = heartbeat.age()
        report.update(
            queue=OK,
            queue_pending=pending,
            consumer="never" if age is None else ("stale" if heartbeat.stale() else OK),
            heartbeat_age_seconds=None if age is None else int(age.total_seconds()),
        )
    healthy = report["database"] == OK and report["cache"] == OK
    return healthy, {"status": OK if healthy else FAILING, **report}


@never_cache
@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    healthy, report = health_report()
    return JsonResponse(report, status=200 if healthy else 503)


class HealthCheckMiddleware:
    """Answer `/healthz` first, so that neither ALLOWED_HOSTS nor the https redirect nor a
    session stands between a load balancer and the answer."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path_info == HEALTH_PATH:
            return healthz(request)
        return self.get_response(request)
