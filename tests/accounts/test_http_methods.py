"""Each accounts page answers only the methods it is for: reading pages GET and HEAD, form
pages also POST; anything else is a 405 (before, a POST or DELETE re-rendered the page)."""

import pytest
from django.urls import reverse

from accounts.tokens import invitation_token
from tests.accounts.helpers import make_invitation


def _team_url(name, team):
    return reverse(f"accounts:{name}", args=[team.pk])


@pytest.mark.parametrize("name", ["team_home", "members", "audit", "audit_export"])
def test_reading_pages_take_get_and_head_only(name, owner_client, team):
    url = _team_url(name, team)
    assert owner_client.get(url).status_code == 200
    assert owner_client.head(url).status_code == 200
    for method in ("post", "put", "patch", "delete"):
        assert getattr(owner_client, method)(url).status_code == 405, method


@pytest.mark.parametrize("name", ["team_settings", "team_delete"])
def test_team_form_pages_take_get_and_post_only(name, owner_client, team):
    url = _team_url(name, team)
    assert owner_client.get(url).status_code == 200
    for method in ("put", "patch", "delete"):
        assert getattr(owner_client, method)(url).status_code == 405, method


def test_other_form_pages_take_get_and_post_only(owner_client, client, team):
    invitation = make_invitation(team)
    pages = [
        (owner_client, reverse("accounts:team_create")),
        (client, reverse("accounts:setup")),
        (client, reverse("accounts:invitation_accept", args=[invitation_token(invitation.pk)])),
    ]
    for browser, url in pages:
        for method in ("put", "patch", "delete"):
            assert getattr(browser, method)(url).status_code == 405, (url, method)
