"""A three-turn conversation in a real browser, against the fake provider on loopback: a member
runs an assistant, then follows the answer up twice from the run's page, each answer arriving
without a reload (htmx polling the newest turn); the model's Markdown is rendered. Without
JavaScript, the page of a turn still going says to reload instead of claiming to update."""

import re

import pytest
from django.urls import reverse
from playwright.sync_api import Page, expect

from assistants import services
from assistants.models import Run
from tests.assistants.helpers import fake_connection


@pytest.fixture
def fake(fake_upstream):
    fake_upstream.run_step_seconds = 0.5
    return fake_upstream


@pytest.mark.e2e
def test_member_holds_a_three_turn_conversation(
    page: Page, sign_in, team, owner, member, fake, console_errors
):
    connection = fake_connection(team, fake, created_by=owner)
    assistant = services.assistant_create(
        team=team,
        user=member,
        connection=connection,
        data={"name": "Math Tutor", "model": "gpt-4o", "tools": []},
    ).value
    sign_in(page, member)
    page.goto(
        reverse("assistants:detail", kwargs={"team_id": team.pk, "assistant_id": assistant.pk})
    )

    page.get_by_label(re.compile(r"^Message:?$")).fill("What is 2 + 2?")
    page.get_by_role("button", name="Run", exact=True).click()
    expect(page).to_have_url(re.compile(r"/runs/[0-9a-f-]{36}/$"))
    page.evaluate("window.tableroNoReload = true")
    status = page.locator("#run-status")
    expect(status).to_have_attribute("data-status", "completed", timeout=15_000)
    assert page.evaluate("window.tableroNoReload") is True  # answered in place

    for turn, question in ((2, "And times **3**?"), (3, "Thanks! Say `bye`.")):
        page.get_by_label("Follow-up message").fill(question)
        page.get_by_role("button", name="Send").click()
        status = page.locator("#run-status")
        expect(status).to_have_attribute("data-turn", str(turn))
        page.evaluate("window.tableroNoReload = true")
        expect(status).to_have_attribute("data-status", "completed", timeout=15_000)
        assert page.evaluate("window.tableroNoReload") is True

    # The whole exchange, in order: the earlier turns, then the newest one.
    expect(page.get_by_role("heading", name="Conversation (3 turns)")).to_be_visible()
    turns = page.locator(".turns > .turn")
    expect(turns).to_have_count(2)
    expect(turns.nth(0)).to_contain_text("What is 2 + 2?")
    expect(turns.nth(0).locator(".markdown")).to_contain_text("You said: What is 2 + 2?")
    expect(turns.nth(1)).to_contain_text("And times **3**?")  # the user's text stays as typed
    # The model's answer quotes it: its Markdown is rendered.
    expect(turns.nth(1).locator(".markdown strong")).to_have_text("3")
    expect(turns.nth(1).locator(".markdown")).to_contain_text("Before that you said")
    expect(page.locator("#turn-3")).to_contain_text("Thanks! Say `bye`.")
    expect(page.locator("#run-status .markdown code")).to_have_text("bye")
    expect(page.get_by_label("Follow-up message")).to_be_visible()  # it can go on

    runs = list(Run.objects.order_by("turn"))
    assert [r.status for r in runs] == ["completed"] * 3
    assert len({r.thread_id for r in runs}) == 1
    fake_thread = fake.state["threads"][runs[0].thread_id]["messages"]
    assert [m["role"] for m in fake_thread] == ["user", "assistant"] * 3

    # The runs list shows the conversation once.
    page.get_by_role("navigation").get_by_role("link", name="Runs").click()
    expect(page.get_by_role("cell", name="What is 2 + 2?")).to_have_count(1)
    expect(page.get_by_role("cell", name="And times **3**?")).to_have_count(0)
    assert console_errors == []


@pytest.mark.e2e
def test_without_javascript_the_page_says_to_reload(
    browser, live_server, sign_in, team, owner, member, fake
):
    connection = fake_connection(team, fake, created_by=owner, run_api="responses")
    assistant = services.assistant_create(
        team=team,
        user=member,
        connection=connection,
        data={"name": "Math Tutor", "model": "gpt-4o", "tools": []},
    ).value
    run = services.run_start(assistant=assistant, user=member, message="Think [slow]").value
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, member)
        page.goto(reverse("assistants:run_detail", kwargs={"team_id": team.pk, "run_id": run.pk}))

        status = page.locator("#run-status")
        expect(status.get_by_text("Reload the page to see how it goes on.")).to_be_visible()
        expect(status.get_by_text("This part of the page updates by itself.")).to_be_hidden()
        expect(
            page.get_by_text("You can send a follow-up once this turn has ended.")
        ).to_be_visible()
    finally:
        context.close()
