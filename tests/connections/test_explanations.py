import pytest
from django.template import Context, Template
from django.test import RequestFactory
from django.utils import translation

from connections.explanations import explain
from provider.errors import ErrorKind, ProviderError


@pytest.mark.parametrize("kind", list(ErrorKind))
def test_every_kind_is_explained_in_english(kind):
    with translation.override("en"):
        explanation = explain(kind)
        assert explanation.kind == kind
        for text in (explanation.title, explanation.cause, explanation.next_step):
            assert str(text).strip()
        # The provider's article, or (for what only the operator can fix) Tablero's README.
        assert explanation.help_url.startswith("https://") or explanation.operator_doc
        assert explanation.severity in ("warn", "danger")


def test_explain_accepts_the_value():
    assert explain("quota_exhausted").kind is ErrorKind.QUOTA_EXHAUSTED


def test_unknown_kind():
    with pytest.raises(ValueError):
        explain("no_such_kind")


@pytest.mark.parametrize(
    ("kind", "article"),
    [
        (ErrorKind.INVALID_KEY, "6891767-error-code-401-invalid-authentication"),
        (ErrorKind.RATE_LIMITED, "6891829"),
        (ErrorKind.QUOTA_EXHAUSTED, "6891831"),
        (ErrorKind.OVERLOADED, "6891834"),
    ],
)
def test_seed_help_articles(kind, article):
    assert article in explain(kind).help_url


def test_quota_says_what_the_provider_says_and_what_to_do():
    explanation = explain(ErrorKind.QUOTA_EXHAUSTED)
    assert "You exceeded your current quota, please check your plan and billing details" in str(
        explanation.cause
    )
    assert "platform.openai.com" in str(explanation.next_step)
    assert "test the connection again" in str(explanation.next_step)


def test_key_unreadable_says_enter_it_again():
    assert "can't be decrypted with the current encryption keys" in str(
        explain(ErrorKind.KEY_UNREADABLE).cause
    )
    assert "Enter the key again" in str(explain(ErrorKind.KEY_UNREADABLE).next_step)


def test_transient_kinds_are_warnings():
    assert explain(ErrorKind.RATE_LIMITED).severity == "warn"
    assert explain(ErrorKind.INVALID_KEY).severity == "danger"


TAG = Template("{% load connections_tags %}{% explain_error error %}")
TAG_NO_DETAILS = Template("{% load connections_tags %}{% explain_error error details=False %}")


def _error() -> ProviderError:
    return ProviderError(
        ErrorKind.RATE_LIMITED,
        "Rate limit reached for requests",
        status=429,
        code="rate_limit_exceeded",
        request_id="req_42",
    )


def test_tag_shows_details_when_asked():
    html = TAG.render(Context({"error": _error()}))
    assert "Rate limit reached (429)" in html
    assert "req_42" not in html  # no request, no admin: no details
    html = Template("{% load connections_tags %}{% explain_error error details=True %}").render(
        Context({"error": _error()})
    )
    assert "req_42" in html and "rate_limit_exceeded" in html and "429" in html


def test_tag_details_follow_the_viewers_role(team, owner, viewer):
    from accounts.access import TeamAccess
    from accounts.models import Membership

    request = RequestFactory().get("/")
    request.team_access = TeamAccess(team=team, membership=Membership.objects.get(user=owner))
    assert "req_42" in TAG.render(Context({"error": _error(), "request": request}))
    assert "req_42" not in TAG_NO_DETAILS.render(Context({"error": _error(), "request": request}))
    request.team_access = TeamAccess(team=team, membership=Membership.objects.get(user=viewer))
    assert "req_42" not in TAG.render(Context({"error": _error(), "request": request}))


def test_tag_takes_a_kind_and_ignores_nothing_or_unknown():
    assert "The provider is overloaded" in TAG.render(Context({"error": "overloaded"}))
    assert TAG.render(Context({"error": ""})).strip() == ""
    assert TAG.render(Context({"error": "bogus"})).strip() == ""


def test_lost_encryption_key_points_to_the_operators_documentation():
    with translation.override("en"):
        explanation = explain(ErrorKind.KEY_UNREADABLE)
        assert explanation.help_url == ""
        assert str(explanation.operator_doc) == "Rotating the encryption keys"
        html = Template("{% include 'connections/partials/error_explanation.html' %}").render(
            Context({"explanation": explanation})
        )
    assert "“Rotating the encryption keys” in Tablero's README" in html
    assert "help pages" not in html and "openai.com" not in html
