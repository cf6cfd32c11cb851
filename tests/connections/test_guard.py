"""The SSRF guard as this site configures it (connections/guard.py): the operator's allowed
hosts from the settings, and refusals that speak the user's language. The guard itself is
tested with the library (tests/provider/test_urlguard.py)."""

import pytest
from django.utils import translation
from django.utils.functional import Promise

from connections.guard import REFUSALS, url_guard
from connections.models import RunApiReason
from provider.runapi import Reason
from provider.urlguard import Refusal, URLRefused


def test_every_refusal_has_words():
    assert set(REFUSALS) == set(Refusal)


@pytest.mark.parametrize(
    "url", ["", "http://api.openai.com/v1", "https://printer.local/v1", "https://127.0.0.1/v1"]
)
def test_refusals_are_lazy_and_translated_when_shown(url):
    with pytest.raises(URLRefused) as caught:
        url_guard().validate_base_url(url)
    error = caught.value
    assert isinstance(error.reason, Promise)
    assert str(error.reason) and error.message == str(error.reason)
    with translation.override("es"):
        spanish = str(error.reason)
    assert spanish != str(error.reason)


def test_a_refusal_names_the_host_in_the_users_language():
    with pytest.raises(URLRefused) as caught:
        url_guard().validate_base_url("https://printer.local/v1")
    assert str(caught.value.reason) == "printer.local is a local name, not a public host."
    with translation.override("es"):
        assert "printer.local" in str(caught.value.reason)


def test_the_operators_allowed_hosts_come_from_the_settings(settings):
    settings.TABLERO_ALLOWED_UPSTREAM_HOSTS = []
    with pytest.raises(URLRefused):
        url_guard().validate_base_url("http://127.0.0.1:8080/v1")
    settings.TABLERO_ALLOWED_UPSTREAM_HOSTS = ["127.0.0.1:8080"]
    assert url_guard().validate_base_url("http://127.0.0.1:8080/v1") == "http://127.0.0.1:8080/v1"


def test_the_librarys_detection_reasons_are_the_stored_ones():
    assert {reason.value for reason in Reason} == set(RunApiReason.values) - {""}
