"""/healthz: for load balancers, without a sign-in, on any host name, over plain http; 200 while
the database and the cache work, 503 when one fails; each part's state in JSON."""

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse

from lib.taskqueue import heartbeat_record
from tests.taskqueue import empty_queue  # noqa: F401

pytestmark = pytest.mark.django_db

PARTS = {
    "status",
    "database",
    "cache",
    "queue",
    "queue_pending",
    "consumer",
    "heartbeat_age_seconds",
}


def get(client: Client | None = None, **extra):
    return (client or Client()).get("/healthz", **extra)


def test_answers_without_sign_in_and_says_each_parts_state():
    response = get()

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"]
    body = response.json()
    assert set(body) == PARTS
    assert body["status"] == body["database"] == body["cache"] == body["queue"] == "ok"
    assert body["queue_pending"] == 0
    assert body["consumer"] == "never"
    assert body["heartbeat_age_seconds"] is None


def test_reports_the_consumer_heartbeat(pinned_clock):
    heartbeat_record()
    pinned_clock.shift(timedelta(seconds=42))

    body = get().json()

    assert body["consumer"] == "ok"
    assert 42 <= body["heartbeat_age_seconds"] <= 45


def test_a_silent_consumer_is_stale_but_the_web_process_still_serves(pinned_clock):
    heartbeat_record()
    pinned_clock.shift(timedelta(minutes=10))

    response = get()

    assert response.status_code == 200
    assert response.json()["consumer"] == "stale"


def test_a_load_balancer_probing_by_address_over_http_gets_the_answer(settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["tablero.example.com"]

    response = get(HTTP_HOST="10.0.0.7:8000")

    assert response.status_code == 200
    assert response.json()["status"] == "ok"
    # Every other page still refuses the host.
    assert Client().get(reverse("accounts:login"), HTTP_HOST="10.0.0.7:8000").status_code == 400


def test_a_broken_cache_answers_503(settings):
    # Nothing listens on port 9: every cache call fails at once.
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": "redis://127.0.0.1:9/0",
        }
    }

    response = get()

    assert response.status_code == 503
    body = response.json()
    assert (body["status"], body["cache"], body["database"]) == ("failing", "failing", "ok")
    assert "127.0.0.1" not in response.content.decode()


def test_only_reads(client):
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405
