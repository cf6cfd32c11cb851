"""The models page, a model's page and the Spend page in a real browser, in English and
Spanish, at a desktop and a phone width: nothing scrolls sideways (a long model id from the
provider wraps), no console error; screenshots go to test-artifacts/."""

from django.urls import reverse
from playwright.sync_api import Page, expect

from connections import costs, services
from fakeprovider import ADMIN_KEY_OK
from tests.connections.helpers import make_connection
from tests.e2e.conftest import ARTIFACTS

WIDTHS = (1366, 360)
LONG_ID = "ft:gpt-4o-mini-2024-07-18:a-very-long-organization-name:" + "x" * 80


def _shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"models-spend-{name}.png"), full_page=True)


def _no_sideways_scroll(page: Page) -> None:
    overflow = page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )
    assert overflow <= 0, f"{page.url} scrolls sideways by {overflow}px"


def test_models_and_spend_pages(
    page, page_es, sign_in, console_errors, fake_upstream, team, admin_user
):
    fake_upstream.state["models"][LONG_ID] = {"id": LONG_ID, "object": "model", "owned_by": "org-x"}
    production = make_connection(team, name="Production", base_url=fake_upstream.base_url)
    services.models_refresh(connection=production, user=admin_user)
    services.connection_set_admin_key(
        connection=production, user=admin_user, admin_key=ADMIN_KEY_OK
    )
    costs.costs_refresh(connection=production, group="line_item")

    models_url = reverse("connections:models", args=[team.pk, production.pk])
    detail_url = reverse("connections:model_detail", args=[team.pk, production.pk, LONG_ID])
    spend_url = reverse("dashboard:spend", args=[team.pk])

    for current, language in ((page, "en"), (page_es, "es")):
        sign_in(current, admin_user)
        for width in WIDTHS:
            current.set_viewport_size({"width": width, "height": 900})

            current.goto(models_url)
            expect(current.locator("html")).to_have_attribute("lang", language)
            expect(current.locator("table.models-table tbody tr")).to_have_count(13)
            _no_sideways_scroll(current)
            _shot(current, f"models-{language}-{width}")

            current.goto(detail_url)
            expect(current.locator("h1")).to_contain_text("ft:gpt-4o-mini")
            _no_sideways_scroll(current)
            _shot(current, f"model-{language}-{width}")

            current.goto(spend_url)
            expect(current.locator("svg#spend-chart")).to_be_visible()
            expect(current.locator("#spend-table tbody tr")).not_to_have_count(0)
            _no_sideways_scroll(current)
            _shot(current, f"spend-{language}-{width}")

    # Search works as a plain GET form.
    page.set_viewport_size({"width": 1366, "height": 900})
    page.goto(models_url)
    page.get_by_label("Search models").fill("embedding")
    page.get_by_role("button", name="Search").click()
    expect(page.locator("table.models-table tbody tr")).to_have_count(1)
    assert console_errors == []
