"""The getting-started checklist on a new team's home, in a real browser."""

from django.urls import reverse
from playwright.sync_api import expect

from tests.e2e.conftest import ARTIFACTS


def test_a_new_team_is_shown_the_way_and_can_hide_it(
    page, sign_in, console_errors, team, owner, viewer
):
    sign_in(page, owner)
    page.goto(reverse("dashboard:team_home", args=[team.pk]))
    checklist = page.locator("#checklist")
    expect(checklist).to_contain_text("Getting started")
    # The viewer counts as someone invited: one step of six is done.
    expect(checklist).to_contain_text("1 of 6 done")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "checklist-owner.png"), full_page=True)

    checklist.get_by_role("link", name="Add a connection").click()
    expect(page.get_by_role("heading", name="Add connection", level=1)).to_be_visible()
    page.go_back()
    page.get_by_role("button", name="Hide this checklist for the team").click()
    expect(page.locator("#checklist")).to_have_count(0)
    expect(page.get_by_text("The getting-started checklist is hidden")).to_be_visible()
    assert console_errors == []
