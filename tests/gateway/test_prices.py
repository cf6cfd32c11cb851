"""The team's price table: add, edit, remove (audited), and how a call is priced."""

import datetime
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import translation

from accounts.models import AuditAction, AuditEvent
from gateway.models import ModelPrice
from gateway.prices import Money, PriceBook
from tests.gateway.usage_helpers import make_price

pytestmark = pytest.mark.usefixtures("pinned_clock")

FORM = {
    "model": " gpt-4.1 ",
    "currency": "eur",
    "input_per_million": "2",
    "cached_input_per_million": "",
    "output_per_million": "8.5",
    "effective_from": "2026-11-01",
}


def _prices_url(team) -> str:
    return reverse("gateway_usage:prices", kwargs={"team_id": team.pk})


def test_an_admin_adds_a_price(admin_client_, team, admin_user):
    url = reverse("gateway_usage:price_create", kwargs={"team_id": team.pk})
    assert admin_client_.get(url).status_code == 200
    response = admin_client_.post(url, FORM)
    assert response.status_code == 302
    assert response["Location"] == _prices_url(team)
    price = ModelPrice.objects.get(team=team)
    assert (price.model, price.currency) == ("gpt-4.1", "EUR")
    assert price.input_per_million == Decimal("2")
    assert price.cached_input_per_million is None
    assert price.effective_from == datetime.date(2026, 11, 1)
    event = AuditEvent.objects.get(team=team, action=AuditAction.PRICE_CREATE)
    assert event.actor == admin_user
    assert event.data["model"] == "gpt-4.1"
    assert event.data["output_per_million"] == "8.5"

    page = admin_client_.get(_prices_url(team)).content.decode()
    assert "gpt-4.1" in page
    assert "8.5" in page
    assert "as input" in page  # no cached price: charged at the input price


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"currency": "dollars"}, "currency", "Ensure this value has at most 3 characters"),
        ({"currency": "U1D"}, "currency", "Enter a three-letter currency code"),
        ({"input_per_million": "-1"}, "input_per_million", "greater than or equal to 0"),
        ({"output_per_million": ""}, "output_per_million", "This field is required"),
        ({"effective_from": "tomorrow"}, "effective_from", "Enter a valid date"),
    ],
)
def test_a_bad_price_is_refused(admin_client_, team, change, field, message):
    url = reverse("gateway_usage:price_create", kwargs={"team_id": team.pk})
    response = admin_client_.post(url, {**FORM, **change})
    assert response.status_code == 200
    assert message in str(response.context["form"].errors[field])
    assert not ModelPrice.objects.exists()


def test_one_price_per_model_and_date(admin_client_, team):
    make_price(team, model="gpt-4.1", day=datetime.date(2026, 11, 1))
    url = reverse("gateway_usage:price_create", kwargs={"team_id": team.pk})
    response = admin_client_.post(url, FORM)
    assert response.status_code == 200
    assert "This model already has a price from that date." in response.content.decode()
    assert ModelPrice.objects.count() == 1
    # Another team may have the same.
    assert not AuditEvent.objects.filter(action=AuditAction.PRICE_CREATE).exists()


def test_an_admin_edits_a_price(admin_client_, team):
    price = make_price(team, model="gpt-4.1", day=datetime.date(2026, 10, 1))
    url = reverse("gateway_usage:price_edit", kwargs={"team_id": team.pk, "price_id": price.pk})
    page = admin_client_.get(url).content.decode()
    assert 'value="0.15"' in page
    response = admin_client_.post(url, FORM)
    assert response.status_code == 302
    price.refresh_from_db()
    assert (price.currency, price.output_per_million) == ("EUR", Decimal("8.5"))
    event = AuditEvent.objects.get(action=AuditAction.PRICE_UPDATE)
    assert event.data["changes"]["currency"] == {"from": "USD", "to": "EUR"}
    assert "model" not in event.data["changes"]


def test_an_admin_removes_a_price(admin_client_, team):
    price = make_price(team)
    url = reverse("gateway_usage:price_delete", kwargs={"team_id": team.pk, "price_id": price.pk})
    assert "This removes the price of gpt-4o-mini" in admin_client_.get(url).content.decode()
    assert admin_client_.post(url).status_code == 302
    assert not ModelPrice.objects.exists()
    event = AuditEvent.objects.get(action=AuditAction.PRICE_DELETE)
    assert event.target_repr.startswith("gpt-4o-mini")


def test_another_teams_price_is_not_found(admin_client_, team, other_team):
    theirs = make_price(other_team)
    for name in ("gateway_usage:price_edit", "gateway_usage:price_delete"):
        url = reverse(name, kwargs={"team_id": team.pk, "price_id": theirs.pk})
        assert admin_client_.get(url).status_code == 404
        assert admin_client_.post(url, FORM).status_code == 404
    assert ModelPrice.objects.filter(pk=theirs.pk).exists()
    assert "gpt-4o-mini" not in admin_client_.get(_prices_url(team)).content.decode()


def test_members_cannot_keep_prices(member_client, team):
    assert member_client.get(_prices_url(team)).status_code == 403
    url = reverse("gateway_usage:price_create", kwargs={"team_id": team.pk})
    assert member_client.post(url, FORM).status_code == 403
    assert not ModelPrice.objects.exists()


def test_the_price_in_force_is_the_latest_on_or_before_the_day(team):
    make_price(team, day=datetime.date(2026, 3, 1), input="1")
    make_price(team, day=datetime.date(2026, 6, 1), input="2")
    book = PriceBook(ModelPrice.objects.all())
    assert book.price_on("gpt-4o-mini", datetime.date(2026, 2, 28)) is None
    assert book.price_on("gpt-4o-mini", datetime.date(2026, 3, 1)).input_per_million == 1
    assert book.price_on("gpt-4o-mini", datetime.date(2026, 5, 31)).input_per_million == 1
    assert book.price_on("gpt-4o-mini", datetime.date(2026, 6, 1)).input_per_million == 2
    assert book.price_on("gpt-4o", datetime.date(2026, 6, 1)) is None


@translation.override("en")
def test_cost_of_tokens(team):
    make_price(team, input="2", cached=None, output="10")
    book = PriceBook(ModelPrice.objects.all())
    day = datetime.date(2026, 11, 1)
    # Without a cached price, cached input is charged at the input price.
    money = book.cost(model="gpt-4o-mini", day=day, input=1000, cached=400, output=100)
    assert money.amounts == {"USD": Decimal("0.003")}
    assert money.display() == "0.00 USD"
    unpriced = book.cost(model="other", day=day, input=10, cached=0, output=5)
    assert (unpriced.known, unpriced.unpriced_tokens, unpriced.display()) == (False, 15, "—")
    assert book.cost(model="other", day=day, input=0, cached=0, output=0).note == ""


@translation.override("en")
def test_money_in_several_currencies_and_rounding():
    money = Money()
    money.add("USD", Decimal("231.9164"))
    money.add("JPY", Decimal("120.5"))
    money.add("USD", Decimal("0.0001"))
    assert money.display() == "121 JPY + 231.92 USD"
    assert money.csv() == ("121 JPY + 231.92 USD", "")
    single = Money()
    single.add("EUR", Decimal("1.005"))
    assert single.csv() == ("1.01", "EUR")


def test_prices_read_plainly_in_each_language(admin_client_, team):
    make_price(team, input="100", cached="0.075", output="1250.5")
    english = admin_client_.get(_prices_url(team)).content.decode()
    assert ">100<" in english and ">0.075<" in english and "1,250.5" in english
    assert "E+" not in english
    spanish = admin_client_.get(_prices_url(team), HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert ">0,075<" in spanish
    assert "Precios de los modelos" in spanish
