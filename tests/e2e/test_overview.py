"""The team's overview and a connection's costs in a real browser, in English and Spanish,
against the fake provider; screenshots go to test-artifacts/."""

from django.urls import reverse
from playwright.sync_api import Page, expect

from assistants.models import RunStatus
from connections import costs, services
from fakeprovider import ADMIN_KEY_OK, KEY_QUOTA
from tests.assistants.helpers import make_assistant, make_run
from tests.connections.helpers import make_connection
from tests.e2e.conftest import ARTIFACTS


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"overview-{name}.png"), full_page=True)


def test_overview_and_costs_in_english_and_spanish(
    page, page_es, sign_in, console_errors, fake_upstream, team, admin_user, member
):
    production = make_connection(team, name="Production", base_url=fake_upstream.base_url)
    services.connection_set_admin_key(
        connection=production, user=admin_user, admin_key=ADMIN_KEY_OK
    )
    services.connection_test(connection=production, user=admin_user)
    costs.costs_refresh(connection=production, group=costs.DEFAULT_GROUP)
    broke = make_connection(
        team, name="Out of credit", key=KEY_QUOTA, base_url=fake_upstream.base_url
    )
    services.connection_test(connection=broke, user=admin_user)
    assistant = make_assistant(team, production, name="Math Tutor")
    make_run(assistant, status=RunStatus.IN_PROGRESS, started_by=member, total_tokens=321)
    make_run(assistant, status=RunStatus.FAILED, started_by=member, last_error_code="server_error")

    costs_url = reverse("connections:costs", args=[team.pk, production.pk])
    home_url = reverse("dashboard:team_home", args=[team.pk])

    for current, language in ((page, "en"), (page_es, "es")):
        sign_in(current, admin_user)

        current.goto(costs_url)
        expect(current.locator("html")).to_have_attribute("lang", language)
        chart = current.locator("svg#costs-chart")
        expect(chart).to_be_visible()
        expect(chart.locator("g.bar-group")).to_have_count(31)
        assert chart.locator("g.bar-group > title").first.text_content()
        assert chart.get_attribute("role") == "img"
        _shot(current, f"costs-{language}")

        current.goto(home_url)
        expect(current.locator("html")).to_have_attribute("lang", language)
        expect(current.locator("#connections")).to_contain_text("Production")
        expect(current.locator("#connections")).to_contain_text("sk-…abcd")
        expect(current.locator("#active-runs")).to_contain_text("Math Tutor")
        expect(current.locator("#latest-errors details")).not_to_have_count(0)
        # This month's spend, read from the costs just fetched (the page asks nothing).
        expect(current.locator(f"#connections a[href='{costs_url}']")).to_contain_text("USD")
        _shot(current, f"home-{language}")

    # The English page says what to do about the connection without credit, in one banner.
    page.goto(home_url)
    expect(page.locator("#needs-attention")).to_contain_text(
        "No credit left on Out of credit: add credit, then test again."
    )
    expect(page.locator(".callout:visible")).to_have_count(1)  # one banner
    # "Test again" in the connection's row tests it without leaving the page (htmx), and the
    # row comes back with the outcome.
    row = page.locator(f"#connection-row-{broke.pk}")
    checks_before = len(fake_upstream.requests_to("/v1/models"))
    row.get_by_role("button", name="Test again").click()
    expect(page.locator(f"#connection-row-{broke.pk}")).to_contain_text("No quota left")
    expect(page.locator(f"#connection-row-{broke.pk}").get_by_role("button")).to_be_enabled()
    assert len(fake_upstream.requests_to("/v1/models")) == checks_before + 1
    assert page.url.endswith(home_url)
    # Headroom of the working key, as a bar with grouped figures and a reset in words.
    expect(page.locator(f"#connection-row-{production.pk} meter")).not_to_have_count(0)
    # The costs were fetched once (for the first page); the home pages asked nothing.
    assert len(fake_upstream.requests_to("/v1/organization/costs")) == 1
    assert console_errors == []
