"""Alerts on the gateway's use (issue 14, item 6), with the clock pinned: a token or a member at
80 % and at 100 % of a monthly budget is alerted to the member and the admins once per
threshold and month; a token with a burst of errors once per burst. Read from the call records
by the periodic task (`dashboard.gateway_alerts`), run here as the consumer would."""

import datetime
from datetime import timedelta
from decimal import Decimal

import pytest

from accounts.models import Membership
from dashboard import gateway_alerts, tasks
from dashboard.models import AlertKind, AlertPreference, AlertSent
from gateway import limit_services
from tests.conftest import PINNED_NOW
from tests.connections.helpers import make_connection
from tests.gateway.usage_helpers import make_call, make_price, make_token

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("pinned_clock")]

NOW = PINNED_NOW


@pytest.fixture
def connection(team, owner):
    return make_connection(team, created_by=owner)


@pytest.fixture
def member_token(team, connection, member):
    return make_token(team, connection, owner=member, name="notebook")


@pytest.fixture
def everyone(owner, admin_user, member, viewer):
    """The team's four roles exist (so who is not mailed is checked too)."""


def _to(mailoutbox) -> list[str]:
    return sorted(address for mail in mailoutbox for address in mail.to)


def _spend(token, tokens: int, *, ago: timedelta = timedelta(minutes=1), **fields):
    return make_call(token, when=NOW - ago, input_tokens=tokens, output_tokens=0, **fields)


def test_a_token_at_80_then_100_percent_is_alerted_once_each_to_its_owner_and_the_admins(
    team, member_token, everyone, mailoutbox
):
    limit_services.usage_limit_set(
        team=team, actor=None, token=member_token, monthly_token_budget=1000
    )
    _spend(member_token, 790)
    assert gateway_alerts.budget_alerts_run(now=NOW) == 0  # 79 %: not yet
    _spend(member_token, 10)
    assert gateway_alerts.budget_alerts_run(now=NOW) == 1
    assert _to(mailoutbox) == ["admin@example.com", "member@example.com", "owner@example.com"]
    mail = mailoutbox[0]
    assert "The token “notebook” used 80 % of its monthly budget" in mail.subject
    assert "800 tokens of a monthly budget of 1,000 tokens in 2026-11 (UTC): 80 %" in mail.body
    assert member_token.display_prefix in mail.body

    mailoutbox.clear()
    assert gateway_alerts.budget_alerts_run(now=NOW) == 0  # no repeat
    _spend(member_token, 150)
    assert gateway_alerts.budget_alerts_run(now=NOW) == 0  # 95 %: the 80 % one went out
    _spend(member_token, 60)
    assert gateway_alerts.budget_alerts_run(now=NOW) == 1
    assert "used its whole monthly budget" in mailoutbox[0].subject
    assert "101 %" in mailoutbox[0].body
    mailoutbox.clear()
    _spend(member_token, 500)
    assert gateway_alerts.budget_alerts_run(now=NOW) == 0
    assert mailoutbox == []


def test_a_members_money_budget_found_wholly_used_is_alerted_once_at_100(
    team, connection, member, admin_user, mailoutbox
):
    make_price(team, input="1", cached=None, output="1")  # 1 USD per million tokens
    limit_services.usage_limit_set(
        team=team,
        actor=None,
        user=member,
        monthly_money_budget=Decimal("1.00"),
        budget_currency="USD",
    )
    first = make_token(team, connection, owner=member, name="a")
    second = make_token(team, connection, owner=member, name="b")
    _spend(first, 700_000)
    _spend(second, 500_000)  # together 1.20 USD
    _spend(first, 9_000_000, model="unpriced")  # no price: not counted in money
    assert gateway_alerts.budget_alerts_run(now=NOW) == 1
    assert _to(mailoutbox) == ["admin@example.com", "member@example.com", "owner@example.com"]
    mail = mailoutbox[0]
    assert "member@example.com used their whole monthly budget" in mail.subject
    assert "1.20 USD of a monthly budget of 1.00 USD" in mail.body
    mailoutbox.clear()
    assert gateway_alerts.budget_alerts_run(now=NOW + timedelta(minutes=1)) == 0
    assert mailoutbox == []


def test_a_new_month_or_a_raised_budget_is_alerted_afresh(team, member_token, mailoutbox):
    limit_services.usage_limit_set(
        team=team, actor=None, token=member_token, monthly_token_budget=100
    )
    _spend(member_token, 100)
    assert gateway_alerts.budget_alerts_run(now=NOW) == 1
    limit_services.usage_limit_set(
        team=team, actor=None, token=member_token, monthly_token_budget=120
    )
    assert gateway_alerts.budget_alerts_run(now=NOW) == 1  # 83 % of the new budget
    december = datetime.datetime(2026, 12, 1, 0, 3, tzinfo=datetime.UTC)
    make_call(member_token, when=december - timedelta(minutes=1), input_tokens=100)
    assert gateway_alerts.budget_alerts_run(now=december) == 1  # November's use is not counted
    assert "2026-12" in mailoutbox[-1].body


def test_an_admin_who_turned_spend_alerts_off_is_not_told_the_member_is(
    team, member_token, admin_user, mailoutbox
):
    membership = Membership.objects.get(team=team, user=admin_user)
    AlertPreference.objects.create(membership=membership, spend_alerts=False)
    limit_services.usage_limit_set(
        team=team, actor=None, token=member_token, monthly_token_budget=1
    )
    _spend(member_token, 5)
    gateway_alerts.budget_alerts_run(now=NOW)
    assert _to(mailoutbox) == ["member@example.com", "owner@example.com"]


def test_spenders_without_recent_calls_are_not_measured_again(
    team, member_token, mailoutbox, django_assert_max_num_queries
):
    limit = limit_services.usage_limit_set(
        team=team, actor=None, token=member_token, monthly_token_budget=10
    )
    type(limit).objects.filter(pk=limit.pk).update(updated_at=NOW - timedelta(days=2))
    _spend(member_token, 50, ago=timedelta(hours=3))
    with django_assert_max_num_queries(2):  # the budgeted limits, the team's recent callers
        assert gateway_alerts.budget_alerts_run(now=NOW) == 0
    assert mailoutbox == []


# --- bursts of errors -------------------------------------------------------------------------


def _errors(token, count: int, *, at: datetime.datetime, status: int = 429, **fields):
    for index in range(count):
        make_call(token, when=at - timedelta(seconds=index), status=status, **fields)


def test_a_burst_of_errors_is_alerted_once_then_again_after_it_ended(
    team, member_token, everyone, mailoutbox
):
    burst = gateway_alerts.BURST_ERRORS
    _errors(member_token, burst - 1, at=NOW - timedelta(minutes=1))
    make_call(member_token, when=NOW - timedelta(minutes=1))  # a success is no error
    assert gateway_alerts.error_burst_alerts_run(now=NOW) == 0
    _errors(member_token, 1, at=NOW, status=500)
    assert gateway_alerts.error_burst_alerts_run(now=NOW) == 1
    assert _to(mailoutbox) == ["admin@example.com", "member@example.com", "owner@example.com"]
    mail = mailoutbox[0]
    assert "Many errors on the token “notebook”" in mail.subject
    assert f"got {burst} errors in the last 5 minutes" in mail.body
    assert f"429 ({burst - 1}), 500 (1)" in mail.body

    # Still going a minute later: the same burst, told once.
    mailoutbox.clear()
    later = NOW + timedelta(minutes=1)
    _errors(member_token, 3, at=later)
    assert gateway_alerts.error_burst_alerts_run(now=later) == 0
    # Quiet for a window: over. A new burst is told again.
    quiet = later + gateway_alerts.BURST_WINDOW + timedelta(minutes=1)
    assert gateway_alerts.error_burst_alerts_run(now=quiet) == 0
    assert not AlertSent.objects.filter(kind=AlertKind.ERROR_BURST).exists()
    again = quiet + timedelta(minutes=1)
    _errors(member_token, burst, at=again, refused=True)
    assert gateway_alerts.error_burst_alerts_run(now=again) == 1
    assert len(mailoutbox) == 3


def test_a_service_tokens_burst_goes_to_the_admins(
    team, connection, everyone, mailoutbox, other_team, outsider
):
    service = make_token(team, connection, owner=None, name="ci")
    _errors(service, gateway_alerts.BURST_ERRORS, at=NOW)
    theirs = make_token(other_team, make_connection(other_team, created_by=outsider), owner=None)
    _errors(theirs, 2, at=NOW)
    assert gateway_alerts.error_burst_alerts_run(now=NOW) == 1
    assert _to(mailoutbox) == ["admin@example.com", "owner@example.com"]
    assert "The service token “ci”" in mailoutbox[0].body


def test_the_periodic_task_runs_both(team, member_token, mailoutbox):
    limit_services.usage_limit_set(
        team=team, actor=None, token=member_token, monthly_token_budget=1
    )
    _spend(member_token, 1, ago=timedelta(seconds=5))
    _errors(member_token, gateway_alerts.BURST_ERRORS, at=NOW - timedelta(seconds=10))
    tasks.gateway_alerts.call_local()
    kinds = set(AlertSent.objects.values_list("kind", flat=True))
    assert kinds == {AlertKind.BUDGET_THRESHOLD, AlertKind.ERROR_BURST}
    assert len(mailoutbox) == 4  # each to the member and the owner


def test_each_reader_gets_the_alert_in_their_language(team, member_token, member, mailoutbox):
    member.language = "es"
    member.save(update_fields=["language"])
    limit_services.usage_limit_set(
        team=team, actor=None, token=member_token, monthly_token_budget=1000
    )
    _spend(member_token, 850)
    gateway_alerts.budget_alerts_run(now=NOW)
    to_member = next(mail for mail in mailoutbox if mail.to == ["member@example.com"])
    assert "ha gastado el 85 % de su presupuesto mensual" in to_member.subject
    assert "850 tokens de un presupuesto mensual de 1\xa0000 tokens" in to_member.body
