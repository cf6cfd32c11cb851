"""From an empty installation to a second person working in a team, in a real browser."""

import re

import pytest
from playwright.sync_api import Page, expect

OWNER_EMAIL = "founder@example.com"
OWNER_PASSWORD = "plum-orbit-cascade-77"
MEMBER_EMAIL = "viewer.person@example.com"
MEMBER_PASSWORD = "quartz-meadow-lantern-58"


def _team_heading(page: Page, name: str):
    return page.get_by_role("heading", level=1, name=name, exact=True)


def _sign_out(page: Page) -> None:
    page.locator("details.user-menu > summary").click()
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()


def _sign_in(page: Page, email: str, password: str) -> None:
    page.get_by_label("Email", exact=True).fill(email)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


@pytest.mark.e2e
def test_onboarding(page: Page, live_server, console_errors):
    # First run: the home page leads to setup.
    page.goto(live_server.url + "/")
    expect(page).to_have_url(re.compile(r"/setup/$"))
    page.get_by_label("Email", exact=True).fill(OWNER_EMAIL)
    page.get_by_label("Name", exact=True).fill("Ada Founder")
    page.get_by_label("Password", exact=True).fill(OWNER_PASSWORD)
    page.get_by_label("Password again").fill(OWNER_PASSWORD)
    page.get_by_label("Team name").fill("Research")
    page.get_by_role("button", name="Create account and team").click()
    expect(_team_heading(page, "Research")).to_be_visible()
    expect(page.get_by_text("Welcome to Tablero. Your team is ready.")).to_be_visible()

    # Sign out and back in.
    _sign_out(page)
    _sign_in(page, OWNER_EMAIL, OWNER_PASSWORD)
    expect(_team_heading(page, "Research")).to_be_visible()

    # A second team, from the team switcher.
    page.locator("details.team-switcher > summary").click()
    page.get_by_role("link", name="New team").click()
    page.get_by_label("Team name").fill("Field Ops")
    page.get_by_role("button", name="Create team").click()
    expect(_team_heading(page, "Field Ops")).to_be_visible()

    # Invite a viewer to it and read the link from the copy box.
    page.get_by_role("navigation").get_by_role("link", name="Members").click()
    expect(_team_heading(page, "Members")).to_be_visible()
    page.get_by_label("Email", exact=True).fill(MEMBER_EMAIL)
    page.get_by_label("Role").select_option("viewer")
    page.get_by_role("button", name="Create invitation").click()
    link_box = page.locator("#invitation-link")
    expect(link_box).to_have_value(re.compile(r"^http://.+/invitations/.+/$"))
    expect(page.locator('[data-copy="invitation-link"]')).to_be_visible()
    link = link_box.input_value()
    expect(page.get_by_role("cell", name=MEMBER_EMAIL)).to_be_visible()

    _sign_out(page)

    # The invited person opens the link and signs up.
    page.goto(link)
    expect(page.get_by_role("heading", name="Join Field Ops")).to_be_visible()
    expect(page.get_by_label("Email")).to_have_value(MEMBER_EMAIL)
    expect(page.get_by_label("Email")).to_be_disabled()
    page.get_by_label("Name", exact=True).fill("Vera Viewer")
    page.get_by_label("Password", exact=True).fill(MEMBER_PASSWORD)
    page.get_by_label("Password again").fill(MEMBER_PASSWORD)
    page.get_by_role("button", name="Create account and join").click()
    expect(_team_heading(page, "Field Ops")).to_be_visible()
    expect(page.get_by_text("Welcome to “Field Ops”.")).to_be_visible()

    _sign_out(page)

    # Signing in again lands on the team, as a viewer who cannot invite.
    _sign_in(page, MEMBER_EMAIL, MEMBER_PASSWORD)
    expect(_team_heading(page, "Field Ops")).to_be_visible()
    page.get_by_role("navigation").get_by_role("link", name="Members").click()
    row = page.get_by_role("row").filter(has_text=MEMBER_EMAIL)
    expect(row.get_by_text("Viewer", exact=True)).to_be_visible()
    expect(page.get_by_role("heading", name="Invite someone")).to_have_count(0)
    expect(page.get_by_role("button", name="Create invitation")).to_have_count(0)
    expect(page.get_by_role("link", name="Leave team…")).to_be_visible()

    assert console_errors == []
