"""The API tokens pages as each role sees them: the list, making a token (shown once, with
snippets), revoking one. A token's full value appears on its creation answer and nowhere else:
not the list, the admin, the audit log, nor a log line."""

import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditEvent
from gateway import grants
from gateway import tokens as token_format
from gateway.models import ApiToken, GatewayCall, TokenKind
from gateway.scopes import Scope
from tests.conftest import client_for, make_user
from tests.connections.helpers import make_connection
from tests.gateway.tokenhelpers import make_token, token_connection

pytestmark = pytest.mark.django_db

TOKEN = re.compile(r"tbl_[a-z0-9]{10}_[A-Za-z0-9_-]{43}")


def list_url(team) -> str:
    return reverse("gateway:tokens", kwargs={"team_id": team.pk})


def create_url(team) -> str:
    return reverse("gateway:token_create", kwargs={"team_id": team.pk})


def revoke_url(token) -> str:
    return reverse("gateway:token_revoke", kwargs={"team_id": token.team_id, "token_id": token.pk})


@pytest.fixture
def connection(team):
    return token_connection(team)


def create(client, team, connection, **overrides):
    data = {
        "name": "Notebook",
        "connection": connection.pk,
        "scopes": ["models", "inference"],
        "lifetime": "90",
        **overrides,
    }
    return client.post(create_url(team), data)


def shown_token(response) -> str:
    found = set(TOKEN.findall(response.content.decode()))
    assert len(found) == 1, found
    return found.pop()


# --- making a token ------------------------------------------------------------------------------


def test_the_form_offers_what_a_member_may_choose(member_client, team, connection):
    page = member_client.get(create_url(team)).content.decode()
    assert "Create API token" in page
    for scope in Scope:
        assert f'value="{scope.value}"' in page
    assert 'value="service"' not in page  # service tokens are for admins
    assert '<option value="gpt-4o-mini">gpt-4o-mini</option>' in page
    assert 'value="365"' in page and 'value="date"' in page


def test_a_viewer_is_offered_the_models_scope_only(viewer_client, team, connection):
    page = viewer_client.get(create_url(team)).content.decode()
    assert 'value="models"' in page
    assert 'value="inference"' not in page and 'value="files"' not in page


def test_admins_are_offered_service_tokens(admin_client_, team, connection):
    assert 'value="service"' in admin_client_.get(create_url(team)).content.decode()


def test_no_connection_no_form(member_client, team):
    page = member_client.get(create_url(team)).content.decode()
    assert "This team has no connection yet" in page
    assert f'action="{create_url(team)}"' not in page


def test_the_token_is_shown_once_with_snippets(member_client, member, team, connection, caplog):
    caplog.set_level(logging.DEBUG)
    response = create(member_client, team, connection, allowed_models=["gpt-4o-mini"])

    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    assert response["Referrer-Policy"] == "no-referrer"
    value = shown_token(response)
    page = response.content.decode()
    assert "Copy this token now. It cannot be shown again" in page
    assert f'value="{value}"' in page
    assert 'data-copy="new-token"' in page
    # Snippets with the site's own address and the token (HTML-escaped quotes).
    assert "OpenAI(base_url=&quot;http://testserver/v1&quot;, api_key=&quot;" + value in page
    assert "new OpenAI({ baseURL: &quot;http://testserver/v1&quot;, apiKey: &quot;" + value in page
    assert "curl http://testserver/v1/chat/completions" in page
    assert "&#x27;Authorization: Bearer " + value + "&#x27;" in page
    assert "model=&quot;gpt-4o-mini&quot;" in page

    token = ApiToken.objects.get()
    assert value.startswith(f"tbl_{token.prefix}_")
    assert token.owner == member and token.kind == TokenKind.PERSONAL
    assert token.allowed_models == ["gpt-4o-mini"]
    assert grants.resolve(value).token_id == token.pk
    assert AuditEvent.objects.filter(action="token.create", actor=member).count() == 1
    assert value not in caplog.text and token_format.split(value)[1] not in caplog.text


def test_afterwards_only_the_prefix_is_shown(owner_client, team, connection, caplog):
    caplog.set_level(logging.DEBUG)
    value = shown_token(create(owner_client, team, connection))
    token = ApiToken.objects.get()
    secret = token_format.split(value)[1]

    pages = [
        owner_client.get(list_url(team)),
        owner_client.get(revoke_url(token)),
        owner_client.get(reverse("accounts:audit", kwargs={"team_id": team.pk})),
        owner_client.get(create_url(team)),
    ]
    for response in pages:
        assert response.status_code == 200
        body = response.content.decode()
        assert secret not in body and token.secret_digest not in body
    listing = pages[0].content.decode()
    assert f"tbl_{token.prefix}_…" in listing
    assert "Notebook" in listing
    # No GET answers with the token again: there is no page to come back to.
    assert not TOKEN.search("".join(r.content.decode() for r in pages))
    assert secret not in caplog.text


def test_the_shown_once_page_has_no_address_of_its_own(member_client, team, connection):
    response = create(member_client, team, connection)
    assert response.status_code == 200  # answered in place, not a redirect to a page
    again = member_client.get(create_url(team)).content.decode()
    assert not TOKEN.search(again)


def test_a_viewer_makes_a_read_only_token(viewer_client, viewer, team, connection):
    response = create(viewer_client, team, connection, scopes=["models"])
    value = shown_token(response)
    assert "for model in client.models.list()" in response.content.decode()
    assert grants.resolve(value).scopes == {Scope.MODELS}
    assert ApiToken.objects.get().owner == viewer


def test_a_viewer_cannot_ask_for_more(viewer_client, team, connection):
    response = create(viewer_client, team, connection, scopes=["models", "inference"])
    assert response.status_code == 200
    assert not TOKEN.search(response.content.decode())
    assert "is not one of the available choices" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_a_member_cannot_make_a_service_token(member_client, member, team, connection):
    shown_token(create(member_client, team, connection, kind="service"))
    token = ApiToken.objects.get()
    assert token.kind == TokenKind.PERSONAL and token.owner == member


def test_an_admin_makes_a_service_token(admin_client_, admin_user, team, connection):
    shown_token(create(admin_client_, team, connection, kind="service"))
    token = ApiToken.objects.get()
    assert token.kind == TokenKind.SERVICE and token.owner is None
    assert token.created_by == admin_user


def test_another_teams_connection_is_refused(owner_client, team, other_team):
    token_connection(team)
    elsewhere = make_connection(other_team, name="Theirs")
    response = create(owner_client, team, elsewhere)
    assert "Select a valid choice" in response.content.decode()
    assert not ApiToken.objects.exists()


def test_a_model_of_another_connection_is_refused(member_client, team, connection):
    bare = make_connection(team, name="Bare", models_cache=[{"id": "llama-3"}])
    response = create(member_client, team, bare, allowed_models=["gpt-4o"])
    assert "Not among the models of “Bare”: gpt-4o." in response.content.decode()
    assert not ApiToken.objects.exists()


def test_a_model_nobody_offered_is_refused(member_client, team, connection):
    response = create(member_client, team, connection, allowed_models=["made-up"])
    assert "is not one of the available choices" in response.content.decode()
    assert not ApiToken.objects.exists()


@pytest.mark.parametrize("days", ["7", "30", "90", "180", "365"])
def test_lifetime_choices(member_client, team, connection, days, pinned_clock):
    shown_token(create(member_client, team, connection, lifetime=days))
    token = ApiToken.objects.get()
    assert abs(token.expires_at - timezone.now() - timedelta(days=int(days))) < timedelta(seconds=5)


def test_an_expiry_date_lasts_to_the_end_of_that_day(member_client, team, connection, pinned_clock):
    shown_token(create(member_client, team, connection, lifetime="date", expires_on="2027-01-15"))
    token = ApiToken.objects.get()
    assert token.expires_at == datetime(2027, 1, 16, tzinfo=UTC)


@pytest.mark.parametrize(
    ("day", "message"),
    [
        ("", "Choose the day the token expires."),
        ("2026-11-29", "Choose a day from today on."),
        ("2027-12-01", "A token lives at most a year."),
    ],
)
def test_expiry_dates_out_of_bounds(member_client, team, connection, pinned_clock, day, message):
    response = create(member_client, team, connection, lifetime="date", expires_on=day)
    assert message in response.content.decode()
    assert not ApiToken.objects.exists()


def test_a_year_from_today_at_most(member_client, team, connection, pinned_clock):
    shown_token(create(member_client, team, connection, lifetime="date", expires_on="2027-11-30"))
    token = ApiToken.objects.get()
    assert token.expires_at - token.created_at <= timedelta(days=365)


def test_a_name_is_needed(member_client, team, connection):
    response = create(member_client, team, connection, name="")
    assert "This field is required." in response.content.decode()
    assert not ApiToken.objects.exists()


# --- the list -----------------------------------------------------------------------------------


@pytest.fixture
def tokens(team, users, connection, pinned_clock):
    """A token each for the member, the admin and the viewer, a service token, and one the
    member revoked."""
    made = {
        "member": make_token(team, users["member"], connection=connection, name="Member's")[0],
        "admin": make_token(team, users["admin"], connection=connection, name="Admin's")[0],
        "viewer": make_token(
            team, users["viewer"], connection=connection, name="Viewer's", scopes=["models"]
        )[0],
        "service": make_token(
            team, None, connection=connection, created_by=users["owner"], name="Nightly job"
        )[0],
    }
    old = make_token(team, users["member"], connection=connection, name="Old one")[0]
    from gateway.services import token_revoke

    token_revoke(token=old, actor=users["member"])
    made["old"] = old
    return made


def test_a_member_sees_their_own_tokens(member_client, team, tokens):
    page = member_client.get(list_url(team)).content.decode()
    assert "Your tokens" in page
    assert "Member&#x27;s" in page and tokens["member"].display_prefix in page
    assert "Old one" in page and "revoked" in page
    for other in ("admin", "viewer", "service"):
        assert tokens[other].display_prefix not in page


@pytest.mark.parametrize("role", ["admin", "owner"])
def test_admins_see_everyones_and_service_tokens(users, team, tokens, role):
    page = client_for(users[role]).get(list_url(team)).content.decode()
    assert "The team’s tokens" in page
    for token in tokens.values():
        assert token.display_prefix in page
    assert "member@example.com" in page and "the team" in page and "service" in page


def test_the_list_shows_use_and_requests_this_month(member_client, team, tokens, pinned_clock):
    token = tokens["member"]
    ApiToken.objects.filter(pk=token.pk).update(
        last_used_at=timezone.now(), last_used_ip="203.0.113.9"
    )
    call = {
        "team": team,
        "token": token,
        "family": "inference",
        "method": "POST",
        "path": "chat/completions",
        "status": 200,
    }
    for _n in range(3):
        GatewayCall.objects.create(**call)
    GatewayCall.objects.create(**call, created_at=timezone.now() - timedelta(days=31))
    GatewayCall.objects.create(**{**call, "token": tokens["admin"]})

    page = member_client.get(list_url(team)).content.decode()
    row = page[page.index(token.display_prefix) :]
    row = row[: row.index("</tr>")]
    assert "203.0.113.9" in row
    assert "<td>3</td>" in row
    assert "inference" in row and "models" in row


def test_a_viewer_sees_the_page(viewer_client, team, tokens):
    page = viewer_client.get(list_url(team)).content.decode()
    assert tokens["viewer"].display_prefix in page
    assert tokens["member"].display_prefix not in page


def test_the_navigation_links_the_page(viewer_client, team):
    page = viewer_client.get(reverse("connections:list", kwargs={"team_id": team.pk}))
    assert f'href="{list_url(team)}"' in page.content.decode()


def test_tokens_long_ended_leave_the_page(member_client, team, member, connection, pinned_clock):
    token = make_token(team, member, connection=connection, lifetime=timedelta(days=7))[0]
    pinned_clock.shift(timedelta(days=8))
    page = member_client.get(list_url(team)).content.decode()
    assert token.display_prefix in page and "expired" in page
    pinned_clock.shift(timedelta(days=31))
    assert token.display_prefix not in member_client.get(list_url(team)).content.decode()


# --- revoking --------------------------------------------------------------------------------


def test_revoke_asks_first(member_client, team, tokens):
    token = tokens["member"]
    page = member_client.get(revoke_url(token)).content.decode()
    assert "cannot be undone" in page and token.display_prefix in page
    token.refresh_from_db()
    assert token.revoked_at is None


def test_a_member_revokes_their_token(member_client, member, team, tokens):
    token = tokens["member"]
    response = member_client.post(revoke_url(token), follow=True)
    assert response.redirect_chain[-1][0] == list_url(team)
    assert "revoked: programs using it are refused from now on" in response.content.decode()
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == member
    assert AuditEvent.objects.filter(action="token.revoke", actor=member).count() == 2

    again = member_client.post(revoke_url(token), follow=True)
    assert "This token was already revoked." in again.content.decode()
    assert AuditEvent.objects.filter(action="token.revoke", actor=member).count() == 2


@pytest.mark.parametrize("other", ["admin", "viewer", "service"])
def test_a_member_may_not_revoke_others(member_client, tokens, other):
    token = tokens[other]
    assert member_client.get(revoke_url(token)).status_code == 403
    assert member_client.post(revoke_url(token)).status_code == 403
    token.refresh_from_db()
    assert token.revoked_at is None


@pytest.mark.parametrize("role", ["admin", "owner"])
@pytest.mark.parametrize("whose", ["member", "viewer", "service"])
def test_admins_revoke_anyones(users, tokens, role, whose):
    token = tokens[whose]
    client_for(users[role]).post(revoke_url(token))
    token.refresh_from_db()
    assert token.revoked_at is not None and token.revoked_by == users[role]


def test_another_teams_token_is_404(owner_client, team, other_team, outsider):
    theirs = make_token(other_team, outsider, connection=token_connection(other_team))[0]
    url = reverse("gateway:token_revoke", kwargs={"team_id": team.pk, "token_id": theirs.pk})
    assert owner_client.post(url).status_code == 404
    assert owner_client.get(revoke_url(theirs)).status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_anonymous_is_sent_to_sign_in(client, team, connection):
    for url in (list_url(team), create_url(team)):
        assert client.get(url).status_code == 302
    assert client.post(create_url(team), {"name": "x"}).status_code == 302
    assert not ApiToken.objects.exists()


def test_someone_who_joined_another_team_only_sees_404(team, connection):
    stranger = make_user("stranger@example.com")
    assert client_for(stranger).get(list_url(team)).status_code == 404


# --- in Spanish ---------------------------------------------------------------------------------


def test_the_pages_speak_spanish(member_client, team, connection):
    page = member_client.get(list_url(team), HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "<h1>Tokens de API</h1>" in page
    assert "Tus tokens" in page and "Crear token" in page
    form = member_client.get(create_url(team), HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Crear token de API" in form and "90 días" in form and "Hasta una fecha…" in form
    assert "Inferencia" in form or "inferencia" in form
    created = member_client.post(
        create_url(team),
        {"name": "Cuaderno", "connection": connection.pk, "scopes": ["models"], "lifetime": "7"},
        HTTP_ACCEPT_LANGUAGE="es",
    ).content.decode()
    assert "Copia este token ahora. No se puede volver a mostrar" in created
    token = ApiToken.objects.get()
    confirm = member_client.get(revoke_url(token), HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "No se puede deshacer" in confirm
    done = member_client.post(revoke_url(token), HTTP_ACCEPT_LANGUAGE="es", follow=True)
    assert "Token «Cuaderno» revocado" in done.content.decode()
    listing = member_client.get(list_url(team), HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "revocado" in listing
