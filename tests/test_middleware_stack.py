"""Under ASGI the middleware stack runs synchronously, switching to a thread once per page
(config/middleware.py), not a thread round trip per middleware."""

import logging

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler
from django.test import AsyncClient


def test_django_switches_between_async_and_sync_only_at_the_last_middleware(settings, caplog):
    settings.DEBUG = True  # Django says where it adapts only then
    with caplog.at_level(logging.DEBUG, logger="django.request"):
        ASGIHandler()

    adapted = [r.getMessage() for r in caplog.records if "handler adapted" in r.getMessage()]
    assert adapted == [f"Asynchronous handler adapted for middleware {settings.MIDDLEWARE[-1]}."]


def test_the_last_middleware_is_the_synchronous_anchor():
    assert settings.MIDDLEWARE[-1] == "config.middleware.SynchronousStack"


@pytest.mark.django_db
def test_a_page_served_through_the_asynchronous_handler_passes_every_middleware():
    response = async_to_sync(AsyncClient().get)("/login/")

    assert response.status_code == 200
    assert "Content-Security-Policy" in response.headers  # django-csp's, near the bottom
    assert response.headers["X-Frame-Options"] == "DENY"
    assert "csrftoken" in response.cookies
