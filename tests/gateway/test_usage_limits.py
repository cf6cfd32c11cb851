"""The limits' data (issue 14): what the database refuses. Enforcement comes later."""

from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from gateway.models import LimitTarget, UsageLimit
from tests.connections.helpers import make_connection
from tests.gateway.usage_helpers import make_token


@pytest.fixture
def token(team, owner, member):
    return make_token(team, make_connection(team, created_by=owner), owner=member)


def _refused(**fields) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        UsageLimit.objects.create(**fields)


def test_a_limit_on_a_token_a_member_and_the_team(team, member, token):
    UsageLimit.objects.create(team=team, target=LimitTarget.TEAM_DEFAULT, requests_per_minute=60)
    UsageLimit.objects.create(
        team=team, target=LimitTarget.TOKEN, token=token, tokens_per_minute=10_000
    )
    UsageLimit.objects.create(
        team=team,
        target=LimitTarget.MEMBER,
        user=member,
        monthly_token_budget=5_000_000,
        monthly_money_budget=Decimal("25.00"),
        budget_currency="USD",
    )
    assert UsageLimit.objects.filter(team=team).count() == 3
    assert token.limits.get().tokens_per_minute == 10_000


def test_a_limit_names_exactly_what_it_applies_to(team, member, token):
    _refused(team=team, target=LimitTarget.TOKEN)
    _refused(team=team, target=LimitTarget.MEMBER, token=token)
    _refused(team=team, target=LimitTarget.TEAM_DEFAULT, user=member)
    _refused(team=team, target="galaxy")


def test_one_limit_per_token_member_and_team(team, member, token):
    UsageLimit.objects.create(team=team, target=LimitTarget.TEAM_DEFAULT)
    UsageLimit.objects.create(team=team, target=LimitTarget.TOKEN, token=token)
    UsageLimit.objects.create(team=team, target=LimitTarget.MEMBER, user=member)
    _refused(team=team, target=LimitTarget.TEAM_DEFAULT)
    _refused(team=team, target=LimitTarget.TOKEN, token=token)
    _refused(team=team, target=LimitTarget.MEMBER, user=member)


def test_a_money_budget_has_a_currency(team):
    _refused(team=team, target=LimitTarget.TEAM_DEFAULT, monthly_money_budget=Decimal("10"))
    _refused(
        team=team,
        target=LimitTarget.TEAM_DEFAULT,
        monthly_money_budget=Decimal("-1"),
        budget_currency="USD",
    )
