"""Usage limits pages (issue 14, item 1): an admin or the owner sets a token's, a member's and
the team default's limits (audited, one write path with the Django admin); anyone else sees
their own read-only. The token list and the usage pages show this month's use against the
budgets; the usage page breaks the spend down by member and model, with its CSV."""

import csv
import datetime
import io
from decimal import Decimal
from urllib.parse import urlencode

import pytest
from django.db import connection as db_connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.models import AuditAction, AuditEvent, Membership, Role
from gateway import limit_services
from gateway.models import GatewayCall, LimitTarget, Refusal, UsageLimit
from tests.conftest import client_for, make_user
from tests.connections.helpers import make_connection
from tests.gateway.usage_helpers import make_call, make_price, make_token

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pinned_clock")]


def _at(day: int, month: int = 11) -> datetime.datetime:
    return datetime.datetime(2026, month, day, 10, tzinfo=datetime.UTC)


@pytest.fixture
def connection(team, owner):
    return make_connection(team, created_by=owner)


@pytest.fixture
def member_token(team, connection, member):
    return make_token(team, connection, owner=member, name="notebook")


@pytest.fixture
def owner_token(team, connection, owner):
    return make_token(team, connection, owner=owner, name="owner's")


def _token_url(team, token, suffix="") -> str:
    return reverse(
        f"gateway_limits:token{suffix}", kwargs={"team_id": team.pk, "token_id": token.pk}
    )


def _member_url(team, user, suffix="") -> str:
    membership = Membership.objects.get(team=team, user=user)
    return reverse(
        f"gateway_limits:member{suffix}",
        kwargs={"team_id": team.pk, "membership_id": membership.pk},
    )


def _default_url(team, suffix="") -> str:
    return reverse(f"gateway_limits:default{suffix}", kwargs={"team_id": team.pk})


def _overview_url(team) -> str:
    return reverse("gateway_limits:overview", kwargs={"team_id": team.pk})


FULL = {
    "requests_per_minute": "60",
    "tokens_per_minute": "10000",
    "concurrent_requests": "4",
    "monthly_token_budget": "1000000",
    "monthly_money_budget": "25.50",
    "budget_currency": "usd",
}


# --- setting limits ------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["admin", "owner"])
def test_an_admin_or_the_owner_sets_a_tokens_limits_audited(users, team, member_token, role):
    client = client_for(users[role])
    url = _token_url(team, member_token)
    page = client.get(url).content.decode()
    assert 'name="requests_per_minute"' in page and "Save limits" in page

    response = client.post(url, FULL)
    assert response.status_code == 302 and response["Location"] == url
    limit = UsageLimit.objects.get(token=member_token)
    assert limit.target == LimitTarget.TOKEN
    assert (limit.requests_per_minute, limit.tokens_per_minute, limit.concurrent_requests) == (
        60,
        10_000,
        4,
    )
    assert limit.monthly_token_budget == 1_000_000
    assert (limit.monthly_money_budget, limit.budget_currency) == (Decimal("25.50"), "USD")
    event = AuditEvent.objects.get(team=team, action=AuditAction.LIMIT_SET)
    assert event.actor == users[role]
    assert event.data["prefix"] == member_token.display_prefix
    assert event.data["changes"]["monthly_money_budget"] == {"from": None, "to": "25.5"}
    assert event.data["changes"]["rpm"] == {"from": None, "to": 60}
    assert event.data["changes"]["monthly_budget"] == {"from": None, "to": 1_000_000}

    client.post(url, {**FULL, "requests_per_minute": "", "concurrent_requests": "8"})
    limit.refresh_from_db()
    assert (limit.requests_per_minute, limit.concurrent_requests) == (None, 8)
    change = AuditEvent.objects.filter(action=AuditAction.LIMIT_SET).order_by("-created_at")[0]
    assert change.data["changes"] == {
        "rpm": {"from": 60, "to": None},
        "concurrent": {"from": 4, "to": 8},
    }
    shown = client.get(url).content.decode()
    assert 'value="8"' in shown and 'value="25.5"' in shown


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"requests_per_minute": "0"}, "requests_per_minute", "at least 1"),
        ({"tokens_per_minute": "-5"}, "tokens_per_minute", "at least 1"),
        ({"concurrent_requests": "2.5"}, "concurrent_requests", "whole number"),
        ({"monthly_token_budget": "lots"}, "monthly_token_budget", "whole number"),
        ({"monthly_money_budget": "0"}, "monthly_money_budget", "more than zero"),
        ({"budget_currency": ""}, "budget_currency", "Give the currency of the money budget"),
        ({"budget_currency": "U$"}, "budget_currency", "three-letter currency code"),
    ],
)
def test_a_wrong_value_re_renders_the_form_with_its_error(
    admin_client_, team, member_token, change, field, message
):
    response = admin_client_.post(_token_url(team, member_token), {**FULL, **change})
    assert response.status_code == 200
    page = response.content.decode()
    assert message in page
    assert "field-error" in page
    assert not UsageLimit.objects.exists()
    assert not AuditEvent.objects.filter(action=AuditAction.LIMIT_SET).exists()


def test_a_currency_without_a_money_budget_is_dropped(admin_client_, team, member_token):
    admin_client_.post(
        _token_url(team, member_token), {"monthly_token_budget": "500", "budget_currency": "EUR"}
    )
    limit = UsageLimit.objects.get(token=member_token)
    assert (limit.monthly_token_budget, limit.budget_currency) == (500, "")


def test_saving_every_field_empty_or_the_remove_button_clears_the_limit(
    admin_client_, admin_user, team, member_token
):
    url = _token_url(team, member_token)
    admin_client_.post(url, FULL)
    response = admin_client_.post(url, {})
    assert response.status_code == 302
    assert not UsageLimit.objects.exists()
    cleared = AuditEvent.objects.get(action=AuditAction.LIMIT_CLEAR)
    assert cleared.actor == admin_user and cleared.data["was"]["rpm"] == 60

    admin_client_.post(url, FULL)
    page = admin_client_.get(url).content.decode()
    assert "Remove all these limits" in page
    response = admin_client_.post(_token_url(team, member_token, "_clear"))
    assert response.status_code == 302 and response["Location"] == url
    assert not UsageLimit.objects.exists()
    assert AuditEvent.objects.filter(action=AuditAction.LIMIT_CLEAR).count() == 2


def test_a_member_sees_their_tokens_limits_read_only_and_cannot_change_them(
    member_client, admin_client_, team, member_token, owner_token, member
):
    admin_client_.post(_token_url(team, member_token), FULL)
    page = member_client.get(_token_url(team, member_token)).content.decode()
    assert "Only an admin or the owner of the team can change limits." in page
    assert 'name="requests_per_minute"' not in page
    assert "10,000" in page  # tokens per minute, read-only
    assert member_client.post(_token_url(team, member_token), FULL).status_code == 403
    assert member_client.post(_token_url(team, member_token, "_clear")).status_code == 403
    assert UsageLimit.objects.get(token=member_token).requests_per_minute == 60
    # Someone else's token: refused, as on the tokens page.
    assert member_client.get(_token_url(team, owner_token)).status_code == 403


def test_another_teams_token_or_member_is_not_found(admin_client_, team, other_team, outsider):
    theirs = make_token(
        other_team, make_connection(other_team, created_by=outsider), owner=outsider
    )
    team_of_admin = team
    url = reverse(
        "gateway_limits:token", kwargs={"team_id": team_of_admin.pk, "token_id": theirs.pk}
    )
    assert admin_client_.get(url).status_code == 404
    assert admin_client_.post(url, FULL).status_code == 404
    membership = Membership.objects.get(user=outsider)
    url = reverse(
        "gateway_limits:member",
        kwargs={"team_id": team_of_admin.pk, "membership_id": membership.pk},
    )
    assert admin_client_.post(url, FULL).status_code == 404
    assert not UsageLimit.objects.exists()


def test_a_members_limits_cover_their_tokens_and_they_see_their_own(
    admin_client_, member_client, team, member, viewer, connection
):
    url = _member_url(team, member)
    response = admin_client_.post(url, {"monthly_token_budget": "2000"})
    assert response.status_code == 302
    limit = UsageLimit.objects.get(team=team, user=member)
    assert (limit.target, limit.monthly_token_budget) == (LimitTarget.MEMBER, 2000)
    event = AuditEvent.objects.get(action=AuditAction.LIMIT_SET)
    assert event.data["member"] == "member@example.com"

    token = make_token(team, connection, owner=member)
    make_call(token, when=_at(20), input_tokens=1200, output_tokens=300)
    page = member_client.get(url).content.decode()
    assert "1,500" in page and "of 2,000" in page and "75 %" in page
    assert 'name="monthly_token_budget"' not in page
    assert member_client.post(url, {"monthly_token_budget": "9"}).status_code == 403
    assert member_client.get(_member_url(team, viewer)).status_code == 403


def test_the_team_default_for_new_tokens(admin_client_, viewer_client, team):
    response = admin_client_.post(_default_url(team), {"requests_per_minute": "30"})
    assert response.status_code == 302
    limit = UsageLimit.objects.get(team=team)
    assert (limit.target, limit.requests_per_minute) == (LimitTarget.TEAM_DEFAULT, 30)
    page = viewer_client.get(_default_url(team)).content.decode()
    assert "Team default for new tokens" in page and "30" in page
    assert viewer_client.post(_default_url(team), {"requests_per_minute": "1"}).status_code == 403
    assert viewer_client.post(_default_url(team, "_clear")).status_code == 403
    admin_client_.post(_default_url(team, "_clear"))
    assert not UsageLimit.objects.exists()


def test_the_service_refuses_a_role_below_admin_and_foreign_objects(
    team, member, other_team, outsider, member_token
):
    from django.core.exceptions import PermissionDenied, ValidationError

    with pytest.raises(PermissionDenied):
        limit_services.usage_limit_set(team=team, actor=member, requests_per_minute=1)
    with pytest.raises(ValidationError):
        limit_services.usage_limit_set(team=other_team, actor=outsider, token=member_token)
    with pytest.raises(ValidationError):
        limit_services.usage_limit_set(team=team, actor=None, user=outsider)
    with pytest.raises(ValidationError):
        limit_services.usage_limit_set(team=team, actor=None, monthly_money_budget=Decimal(5))
    assert not UsageLimit.objects.exists()


# --- the overview and the links ------------------------------------------------------------------


def test_the_overview_shows_everyone_to_an_admin_and_ones_own_to_a_member(
    admin_client_, member_client, team, member, owner, member_token, owner_token
):
    limit_services.usage_limit_set(team=team, actor=None, user=owner, monthly_token_budget=99_000)
    limit_services.usage_limit_set(team=team, actor=None, token=member_token, concurrent_requests=3)
    limit_services.usage_limit_set(team=team, actor=None, token=owner_token, concurrent_requests=7)
    page = admin_client_.get(_overview_url(team)).content.decode()
    assert "owner@example.com" in page and "member@example.com" in page and "99,000" in page
    assert member_token.display_prefix in page and owner_token.display_prefix in page

    mine = member_client.get(_overview_url(team)).content.decode()
    assert "Your limits" in mine
    assert member_token.display_prefix in mine
    assert owner_token.display_prefix not in mine and "99,000" not in mine


def test_the_overview_says_what_the_limits_refused_in_the_last_hour(
    admin_client_, member_client, team, member, member_token, owner_token
):
    limit_services.usage_limit_set(team=team, actor=None, token=member_token, concurrent_requests=3)
    limit_services.usage_limit_set(team=team, actor=None, token=owner_token, concurrent_requests=7)
    now = datetime.datetime.now(datetime.UTC)
    refusals = [
        (now - datetime.timedelta(minutes=5), Refusal.TOKEN_RPM),
        (now - datetime.timedelta(minutes=50), Refusal.TOKEN_RPM),
        (now - datetime.timedelta(minutes=20), Refusal.MEMBER_MONTH_MONEY),
        # Neither counts: too long ago, and the provider's fair share (not Tablero's limits).
        (now - datetime.timedelta(minutes=70), Refusal.TOKEN_RPM),
        (now - datetime.timedelta(minutes=1), Refusal.FAIR_SHARE_REQUESTS),
    ]
    for when, refusal in refusals:
        call = make_call(member_token, when=when, status=429, refused=True)
        GatewayCall.objects.filter(pk=call.pk).update(refusal=refusal)
    make_call(member_token)  # answered: not a refusal

    page = admin_client_.get(_overview_url(team)).content.decode()
    said = (
        "Refused in the last hour: 3 (Requests per minute (the token&#x27;s limit): 2; "
        "Monthly money budget (the member&#x27;s): 1)"
    )
    assert page.count(said) == 2  # the member's row and their token's
    assert page.count("Refused in the last hour") == 2  # nothing on the owner or their token
    assert said in member_client.get(_overview_url(team)).content.decode()

    spanish = admin_client_.get(_overview_url(team), HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert "Rechazadas en la última hora: 3" in spanish


def test_the_overview_reads_the_refusals_in_one_query_per_table(admin_client_, team, member_token):
    limit_services.usage_limit_set(team=team, actor=None, token=member_token, concurrent_requests=3)
    with CaptureQueriesContext(db_connection) as queries:
        admin_client_.get(_overview_url(team))
    refusal_reads = [q["sql"] for q in queries if "limit_token_rpm" in q["sql"]]
    assert len(refusal_reads) == 2  # the members', the tokens'


def test_the_tokens_members_and_usage_pages_link_to_the_limits(
    admin_client_, member_client, team, member, member_token
):
    tokens = admin_client_.get(reverse("gateway:tokens", kwargs={"team_id": team.pk}))
    assert _overview_url(team) in tokens.content.decode()
    assert _token_url(team, member_token) in tokens.content.decode()
    members = admin_client_.get(reverse("accounts:members", kwargs={"team_id": team.pk}))
    assert _member_url(team, member) in members.content.decode()
    own = member_client.get(reverse("accounts:members", kwargs={"team_id": team.pk}))
    assert _member_url(team, member) in own.content.decode()
    usage_page = member_client.get(reverse("gateway_usage:summary", kwargs={"team_id": team.pk}))
    assert _overview_url(team) in usage_page.content.decode()


def test_the_pages_speak_spanish(admin_client_, team, member_token):
    page = admin_client_.get(
        _token_url(team, member_token), HTTP_ACCEPT_LANGUAGE="es"
    ).content.decode()
    assert "Peticiones por minuto" in page
    assert "Guardar límites" in page
    response = admin_client_.post(
        _token_url(team, member_token),
        {"monthly_money_budget": "5"},
        HTTP_ACCEPT_LANGUAGE="es",
    )
    assert "Indica la moneda del presupuesto en dinero." in response.content.decode()


# --- the Django admin: the same write path ---------------------------------------------------


def test_the_django_admin_sets_and_removes_limits_through_the_service(team, member, member_token):
    root = make_user("root@example.com", is_staff=True, is_superuser=True)
    client = client_for(root)
    add = reverse("admin:gateway_usagelimit_add")
    bad = client.post(
        add,
        {"team": team.pk, "target": "token", "token": member_token.pk, "requests_per_minute": "0"},
    )
    assert bad.status_code == 200 and "at least 1" in bad.content.decode()
    response = client.post(
        add,
        {"team": team.pk, "target": "token", "token": member_token.pk, "requests_per_minute": "12"},
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    limit = UsageLimit.objects.get(token=member_token)
    assert limit.requests_per_minute == 12
    event = AuditEvent.objects.get(action=AuditAction.LIMIT_SET)
    assert (event.actor, event.data["via"]) == (root, "admin")

    delete = reverse("admin:gateway_usagelimit_delete", args=[limit.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 302
    assert not UsageLimit.objects.exists()
    assert AuditEvent.objects.get(action=AuditAction.LIMIT_CLEAR).data["via"] == "admin"


# --- use against budgets -------------------------------------------------------------------------


def _tokens_page(client, team) -> str:
    return client.get(reverse("gateway:tokens", kwargs={"team_id": team.pk})).content.decode()


def test_the_token_list_shows_the_months_use_against_the_budget(member_client, team, member_token):
    make_price(team, input="1", cached=None, output="1")  # 1 USD per million tokens
    limit_services.usage_limit_set(
        team=team,
        actor=None,
        token=member_token,
        monthly_token_budget=2_000_000,
        monthly_money_budget=Decimal("4"),
        budget_currency="USD",
    )
    make_call(member_token, when=_at(3), input_tokens=1_000_000, output_tokens=600_000)
    make_call(member_token, when=_at(31, month=10), input_tokens=5_000_000)  # last month
    page = _tokens_page(member_client, team)
    row = page[page.index(member_token.display_prefix) :]
    row = row[: row.index("</tr>")]
    assert "1,600,000" in row and "of 2,000,000" in row and "80 %" in row
    assert "1.60 USD" in row and "of 4.00 USD" in row and "40 %" in row


def test_the_token_list_takes_the_same_queries_whatever_the_tokens(
    admin_client_, team, connection, admin_user
):
    make_price(team)
    first = make_token(team, connection, owner=admin_user, name="first")
    make_call(first, when=_at(10))
    _tokens_page(admin_client_, team)  # the session learns the current team (a write, once)

    def count() -> int:
        with CaptureQueriesContext(db_connection) as captured:
            _tokens_page(admin_client_, team)
        return len(captured)

    few = count()
    for index in range(8):
        user = make_user(f"m{index}@example.com")
        Membership.objects.create(team=team, user=user, role=Role.MEMBER)
        theirs = make_token(team, connection, owner=user, name=f"t{index}")
        limit_services.usage_limit_set(
            team=team, actor=None, token=theirs, monthly_token_budget=10_000
        )
        for day in (2, 9, 20):
            make_call(theirs, when=_at(day), model=f"model-{index % 3}")
    assert count() == few


def _export(client, team, **params) -> list[list[str]]:
    url = reverse("gateway_usage:export", kwargs={"team_id": team.pk})
    response = client.get(f"{url}?{urlencode(params)}")
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return list(csv.reader(io.StringIO(body)))


def test_who_spent_what_on_which_model_this_month_page_and_csv(
    admin_client_, member_client, team, connection, member, admin_user
):
    make_price(team, model="gpt-4o", input="2", cached=None, output="8")
    mine = make_token(team, connection, owner=member)
    theirs = make_token(team, connection, owner=admin_user)
    make_call(mine, when=_at(5), model="gpt-4o", input_tokens=1_000_000, output_tokens=0)
    make_call(mine, when=_at(6), model="gpt-4o-mini", input_tokens=10, output_tokens=5)
    make_call(theirs, when=_at(7), model="gpt-4o", input_tokens=0, output_tokens=500_000)
    make_call(theirs, when=_at(31, month=10), model="gpt-4o")  # last month

    url = reverse("gateway_usage:summary", kwargs={"team_id": team.pk})
    page = admin_client_.get(f"{url}?by=member_model").content.decode()
    assert "By member and model" in page
    assert "4.00 USD" in page and "2.00 USD" in page

    rows = _export(admin_client_, team, by="member_model")
    assert rows[0][:4] == ["Member", "Detail", "Model", "Requests"]
    cost = rows[0].index("Cost")
    found = {(row[0], row[2]): (row[3], row[cost]) for row in rows[1:]}
    assert found == {
        ("admin@example.com", "gpt-4o"): ("1", "4.00"),
        ("member@example.com", "gpt-4o"): ("1", "2.00"),
        ("member@example.com", "gpt-4o-mini"): ("1", ""),
    }
    # The member with the most tokens first, each member's models together.
    assert [row[0] for row in rows[1:]] == [
        "member@example.com",
        "member@example.com",
        "admin@example.com",
    ]
    assert [row[2] for row in rows[1:3]] == ["gpt-4o", "gpt-4o-mini"]
    # A member: their own only.
    own = _export(member_client, team, by="member_model")
    assert {row[0] for row in own[1:]} == {"member@example.com"}


def test_the_usage_page_shows_budgets_beside_members_and_tokens(
    admin_client_, team, connection, member
):
    token = make_token(team, connection, owner=member)
    make_call(token, when=_at(12), input_tokens=900, output_tokens=0)
    limit_services.usage_limit_set(team=team, actor=None, user=member, monthly_token_budget=1000)
    url = reverse("gateway_usage:summary", kwargs={"team_id": team.pk})
    page = admin_client_.get(f"{url}?by=member").content.decode()
    assert "Monthly budget" in page and "of 1,000" in page and "90 %" in page
    rows = _export(admin_client_, team, by="member")
    assert rows[0][-3:] == [
        "Monthly budget in tokens",
        "Monthly budget in money",
        "Budget currency",
    ]
    assert rows[1][0] == "member@example.com" and rows[1][-3:] == ["1000", "", ""]


# --- the month next to a budget is the month the budget is enforced in ----------------------------


@pytest.fixture
def across_the_months_edge(settings, pinned_clock):
    """Mexico City (UTC-6 all year) on 30 November at 21:00: already December in UTC, the
    month the budgets are counted in."""
    settings.TIME_ZONE = "America/Mexico_City"
    pinned_clock.move_to(datetime.datetime(2026, 12, 1, 3, 0, tzinfo=datetime.UTC))


# Transactional: `limits.month_spent` (what the gateway reads) closes a connection left in a
# transaction, as the test's own would be.
@pytest.mark.django_db(transaction=True)
def test_every_use_shown_against_a_budget_is_the_enforced_utc_month(
    across_the_months_edge, admin_client_, member_client, team, member, member_token
):
    from gateway import limits
    from gateway.prices import PriceBook

    make_price(team, input="1", cached=None, output="1")  # 1 USD per million tokens
    limit_services.usage_limit_set(
        team=team,
        actor=None,
        token=member_token,
        monthly_token_budget=10_000_000,
        monthly_money_budget=Decimal("10"),
        budget_currency="USD",
    )
    # 1 December 01:00 UTC, 30 November 19:00 in Mexico City: this budget month.
    make_call(
        member_token,
        when=datetime.datetime(2026, 12, 1, 1, tzinfo=datetime.UTC),
        input_tokens=1_000_000,
        output_tokens=0,
    )
    # 30 November 10:00 UTC: the site's month (November there), not the budget's.
    make_call(member_token, when=_at(30), input_tokens=5_000_000, output_tokens=0)

    # What the gateway enforces: 1,000,000 tokens spent this month, 1 USD.
    limit = limits.Limit(
        source=limits.LimitSource.TOKEN,
        key=f"t:{member_token.pk.hex}",
        team_id=team.pk,
        token_id=member_token.pk,
        user_id=None,
        monthly_token_budget=10_000_000,
        monthly_money_budget=Decimal("10"),
        budget_currency="USD",
    )
    month = limits.month_of(datetime.datetime.now(datetime.UTC))
    assert month == "2026-12"
    assert limits.month_spent(limit, month, PriceBook.for_team(team)) == (1_000_000, 1_000_000)

    page = _tokens_page(member_client, team)
    row = page[page.index(member_token.display_prefix) :]
    row = row[: row.index("</tr>")]
    assert "1,000,000" in row and "of 10,000,000" in row and "10 %" in row
    assert "1.00 USD" in row and "of 10.00 USD" in row

    url = reverse("gateway_usage:summary", kwargs={"team_id": team.pk})
    page = admin_client_.get(f"{url}?by=token").content.decode()
    assert "of 10,000,000" in page and "10 %" in page and "60 %" not in page

    page = admin_client_.get(_token_url(team, member_token)).content.decode()
    assert "1,000,000" in page and "10 %" in page
