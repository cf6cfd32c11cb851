"""Assistants and runs in a real browser, against the fake provider on loopback: a member
creates an assistant, runs it and watches the run finish without reloading (htmx polling),
starts a slow one and cancels it; a viewer sees it all but cannot run anything."""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from assistants.models import Run
from connections import services
from tests.assistants.helpers import fake_connection


def label(text: str) -> re.Pattern[str]:
    return re.compile(rf"^{text}:?$")


@pytest.fixture
def fake(fake_upstream):
    fake_upstream.run_step_seconds = 0.5
    return fake_upstream


@pytest.mark.e2e
def test_member_creates_runs_and_cancels(
    page: Page, sign_in, team, owner, member, fake, console_errors
):
    connection = fake_connection(team, fake, created_by=owner)
    services.models_refresh(connection=connection, user=owner)  # as adding it does
    sign_in(page, member)

    # Create an assistant: the model comes from the connection's list.
    page.goto(reverse("assistants:list", kwargs={"team_id": team.pk}))
    page.get_by_role("link", name="New assistant").click()
    expect(page.get_by_role("heading", name=f"Assistant on “{connection.name}”")).to_be_visible()
    page.get_by_label(label("Name")).fill("Math Tutor")
    page.get_by_label(label("Instructions")).fill("You are a personal math tutor.")
    page.get_by_label(label("Model")).select_option("gpt-4o")
    page.get_by_label("Code interpreter").check()
    page.get_by_role("button", name="Create assistant").click()
    expect(page.get_by_text("Assistant created.")).to_be_visible()
    expect(page.locator(".badge", has_text="Synced")).to_be_visible()
    remote_id = page.locator("dd.mono").first.inner_text()
    assert remote_id.startswith("asst_") and remote_id in fake.state["assistants"]

    # Run it and watch the status change in place.
    page.get_by_label(label("Message")).fill("What is 2 + 2?")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}/$"))
    page.evaluate("window.tableroNoReload = true")
    status = page.locator("#run-status")
    expect(status).to_have_attribute("data-status", "completed", timeout=15_000)
    expect(status.get_by_text("You said: What is 2 + 2?")).to_be_visible()
    assert page.evaluate("window.tableroNoReload") is True  # the page was never reloaded
    expect(status).not_to_have_attribute("hx-get", re.compile(".+"))

    # A slow run, cancelled.
    page.get_by_role("link", name="Math Tutor").first.click()
    page.get_by_label(label("Message")).fill("Think hard [slow]")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(status).to_have_attribute("data-status", "in_progress", timeout=10_000)
    # Cancelling asks first, on a page of its own; keeping it running changes nothing.
    page.get_by_role("link", name="Cancel run…").click()
    expect(page.get_by_role("heading", name="Cancel run")).to_be_visible()
    page.get_by_role("link", name="Keep it running").click()
    expect(page.locator("#run-status")).to_be_visible()
    page.get_by_role("link", name="Cancel run…").click()
    page.get_by_role("button", name="Cancel run").click()
    expect(page.get_by_text("Cancellation requested.")).to_be_visible()
    expect(page.locator("#run-status")).to_have_attribute(
        "data-status", "cancelled", timeout=15_000
    )
    expect(page.get_by_text("The run was cancelled")).to_be_visible()

    statuses = sorted(Run.objects.values_list("status", flat=True))
    assert statuses == ["cancelled", "completed"]
    assert console_errors == []


@pytest.mark.e2e
def test_viewer_sees_but_cannot_run(
    page: Page, sign_in, team, owner, member, viewer, fake, console_errors
):
    from assistants import services

    connection = fake_connection(team, fake, created_by=owner)
    assistant = services.assistant_create(
        team=team,
        user=member,
        connection=connection,
        data={"name": "Math Tutor", "model": "gpt-4o", "tools": []},
    ).value
    services.run_start(assistant=assistant, user=member, message="What is 2 + 2?")
    sign_in(page, viewer)

    page.goto(reverse("assistants:list", kwargs={"team_id": team.pk}))
    expect(page.get_by_role("link", name="New assistant")).to_have_count(0)
    page.get_by_role("link", name="Math Tutor").click()
    expect(page.get_by_role("heading", name="Math Tutor", level=1)).to_be_visible()
    expect(page.get_by_label(label("Message"))).to_have_count(0)
    expect(page.get_by_role("button", name="Run", exact=True)).to_have_count(0)
    expect(page.locator("#run")).to_contain_text("You are a viewer in this team")

    page.get_by_role("navigation").get_by_role("link", name="Runs").click()
    expect(page.get_by_role("cell", name="What is 2 + 2?")).to_be_visible()

    token = next(c["value"] for c in page.context.cookies() if c["name"] == "csrftoken")
    start = reverse(
        "assistants:run_start", kwargs={"team_id": team.pk, "assistant_id": assistant.pk}
    )
    response = page.request.post(
        start,
        form={"message": "Let me in"},
        headers={"X-CSRFToken": token, "Referer": page.url},
    )
    assert response.status == 403
    assert Run.objects.count() == 1
    assert console_errors == []
