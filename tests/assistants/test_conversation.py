"""Conversations: a run's page continued with follow-up messages, on both run APIs, against the
fake provider (which keeps threads' messages and follows `previous_response_id`)."""

import re
import uuid

import pytest
from django.urls import reverse

from assistants.models import Run, RunStatus
from tests.assistants.helpers import check_refusals, fake_connection, make_assistant, make_run
from tests.conftest import client_for

pytestmark = pytest.mark.django_db

QUESTIONS = ["What is 2 + 2?", "And times 3?", "Say it in **Spanish**, please."]


def page_url(run) -> str:
    return reverse("assistants:run_detail", kwargs={"team_id": run.team_id, "run_id": run.pk})


def follow_up_url(run) -> str:
    return reverse("assistants:run_follow_up", kwargs={"team_id": run.team_id, "run_id": run.pk})


def retry_url(run) -> str:
    return reverse("assistants:run_retry", kwargs={"team_id": run.team_id, "run_id": run.pk})


def start_url(assistant) -> str:
    return reverse(
        "assistants:run_start", kwargs={"team_id": assistant.team_id, "assistant_id": assistant.pk}
    )


def converse(client, assistant, questions) -> list[Run]:
    """Start a run with the first question and follow it up with the others, through the
    pages (the tasks run at once in tests, and the fake's runs end at once)."""
    response = client.post(start_url(assistant), {"message": questions[0]})
    assert response.status_code == 302
    turn = Run.objects.get(is_latest=True)
    for question in questions[1:]:
        response = client.post(follow_up_url(turn), {"message": question})
        assert response.status_code == 302, response.content.decode()
        turn = Run.objects.get(is_latest=True)
        assert response["Location"] == page_url(turn)
    return list(Run.objects.order_by("turn"))


def text_of(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


def assert_the_exchange_in_order(content: str, turns: list[Run]) -> None:
    """Each question, then its answer, in the order of the turns."""
    text = text_of(content)
    at = 0
    for turn in turns:
        question = text.find(text_of(turn.input).strip(), at)
        assert question >= at, turn.input
        answer = text.find("Hello from the fake provider.", question)
        assert answer > question
        at = answer + 1


def test_three_turns_on_the_assistants_api(team, connection, member, member_client, fake):
    assistant = make_assistant(team, connection, sync_state="pending")

    turns = converse(member_client, assistant, QUESTIONS)

    assert [t.turn for t in turns] == [1, 2, 3]
    assert [t.status for t in turns] == [RunStatus.COMPLETED] * 3
    assert [t.is_latest for t in turns] == [False, False, True]
    assert {t.conversation_id for t in turns} == {turns[0].pk}
    thread = turns[0].thread_id
    assert thread and all(t.thread_id == thread for t in turns)
    assert len({t.remote_run_id for t in turns}) == 3
    assert all(t.total_tokens and t.completed_at for t in turns)  # each its own
    # What was sent: a thread and its run, then two runs on that thread, each adding its
    # message; the second answer knows the first question.
    assert len(fake.requests_to("/v1/threads/runs", "POST")) == 1
    later = fake.requests_to(f"/v1/threads/{thread}/runs", "POST")
    assert [r.json for r in later] == [
        {
            "assistant_id": assistant.remote_id or turns[0].assistant.remote_id,
            "additional_messages": [{"role": "user", "content": question}],
        }
        for question in QUESTIONS[1:]
    ]
    kept = fake.state["threads"][thread]["messages"]
    assert [m["role"] for m in kept] == ["user", "assistant"] * 3
    assert turns[1].output_text == (
        "Hello from the fake provider. You said: And times 3? "
        "(Before that you said: What is 2 + 2?)"
    )
    # The page: the whole exchange in order, from any of its turns' addresses.
    for shown in (turns[0], turns[2]):
        content = member_client.get(page_url(shown)).content.decode()
        assert_the_exchange_in_order(content, turns)
        assert "Conversation (3 turns)" in content
    # The answer's Markdown is rendered (the fake quotes the question's **Spanish**).
    assert "<strong>Spanish</strong>" in content


def test_three_turns_on_the_responses_api(team, fake, owner, member, member_client):
    connection = fake_connection(team, fake, created_by=owner, run_api="responses")
    assistant = make_assistant(team, connection)

    turns = converse(member_client, assistant, QUESTIONS)

    assert [t.backend for t in turns] == ["responses"] * 3
    assert [t.status for t in turns] == [RunStatus.COMPLETED] * 3
    sent = [r.json for r in fake.requests_to("/v1/responses", "POST")]
    assert [body["input"] for body in sent] == QUESTIONS
    assert "previous_response_id" not in sent[0]
    assert sent[1]["previous_response_id"] == turns[0].response_id
    assert sent[2]["previous_response_id"] == turns[1].response_id
    assert all(body["background"] is True and body["store"] is True for body in sent)
    assert "(Before that you said: And times 3?)" in turns[2].output_text
    content = member_client.get(page_url(turns[1])).content.decode()
    assert_the_exchange_in_order(content, turns)


def test_the_runs_list_shows_a_conversation_once(team, connection, member, member_client, fake):
    assistant = make_assistant(team, connection, sync_state="pending")
    converse(member_client, assistant, QUESTIONS)
    make_run(assistant, started_by=member, input="A single shot")

    content = member_client.get(reverse("assistants:runs", kwargs={"team_id": team.pk}))
    content = content.content.decode()

    assert content.count(QUESTIONS[0]) == 1
    assert QUESTIONS[1] not in content  # the conversation shows its first message
    assert "A single shot" in content
    newest = Run.objects.get(is_latest=True, turn=3)
    assert page_url(newest) in content
    for run in Run.objects.filter(is_latest=False):
        assert page_url(run) not in content
    tokens = sum(
        Run.objects.filter(conversation=newest.conversation).values_list("total_tokens", flat=True)
    )
    assert f"<td>{tokens}</td>" in content and "<td>3</td>" in content


def test_a_follow_up_while_the_turn_runs_is_refused(team, connection, member, member_client, fake):
    fake.run_step_seconds = 30
    assistant = make_assistant(team, connection, sync_state="pending")
    member_client.post(start_url(assistant), {"message": "Think [slow]"})
    run = Run.objects.get()
    before = len(fake.requests)

    page = member_client.get(page_url(run)).content.decode()
    response = member_client.post(follow_up_url(run), {"message": "Are you done?"})

    assert "You can send a follow-up once this turn has ended." in page
    assert 'action="' + follow_up_url(run) not in page
    assert response.status_code == 200
    assert "The previous turn has not ended yet" in response.content.decode()
    assert Run.objects.count() == 1
    assert len(fake.requests) == before  # nothing was sent


def test_two_follow_ups_at_once_make_one_turn(team, connection, member, member_client, fake):
    """The second form was filled in before the first was sent: it finds a turn running."""
    assistant = make_assistant(team, connection, sync_state="pending")
    (first,) = converse(member_client, assistant, ["What is 2 + 2?"])

    member_client.post(follow_up_url(first), {"message": "One [slow]"})
    response = member_client.post(follow_up_url(first), {"message": "Two"})

    assert "The previous turn has not ended yet" in response.content.decode()
    assert list(Run.objects.order_by("turn").values_list("input", flat=True)) == [
        "What is 2 + 2?",
        "One [slow]",
    ]


def test_the_same_follow_up_sent_twice_starts_one_turn(team, connection, member, member_client):
    assistant = make_assistant(team, connection, sync_state="pending")
    first = make_run(assistant, started_by=member)
    token = str(uuid.uuid4())

    one = member_client.post(follow_up_url(first), {"message": "Hi", "submission_token": token})
    two = member_client.post(follow_up_url(first), {"message": "Hi", "submission_token": token})

    assert one["Location"] == two["Location"]
    assert Run.objects.count() == 2


def test_an_empty_follow_up_re_renders_the_form(team, connection, member, member_client, fake):
    assistant = make_assistant(team, connection, sync_state="pending")
    first = make_run(assistant, started_by=member)

    response = member_client.post(follow_up_url(first), {"message": "   "})

    assert response.status_code == 200
    assert "This field is required" in response.content.decode()
    assert Run.objects.count() == 1 and fake.requests == []


def test_a_failed_turn_can_be_retried_on_the_assistants_api(
    team, connection, member, member_client, fake
):
    assistant = make_assistant(team, connection, sync_state="pending")
    turns = converse(member_client, assistant, ["Hi", "Now fail [fail]"])
    assert turns[1].status == RunStatus.FAILED
    content = member_client.get(page_url(turns[1])).content.decode()
    assert "Retry this message" in content

    response = member_client.post(retry_url(turns[1]))

    retry = Run.objects.get(turn=3)
    assert response["Location"] == page_url(retry)
    assert retry.is_retry and retry.input == "Now fail [fail]"
    thread = turns[0].thread_id
    sent = fake.requests_to(f"/v1/threads/{thread}/runs", "POST")[-1].json
    # The failed run's message is in the thread already: not added a second time.
    assert "additional_messages" not in sent
    kept = fake.state["threads"][thread]["messages"]
    assert [m["role"] for m in kept] == ["user", "assistant", "user"]


def test_a_failed_turn_can_be_retried_or_followed_up_on_the_responses_api(
    team, fake, owner, member, member_client
):
    connection = fake_connection(team, fake, created_by=owner, run_api="responses")
    assistant = make_assistant(team, connection)
    turns = converse(member_client, assistant, ["Hi", "Now fail [fail]"])

    member_client.post(retry_url(turns[1]))
    member_client.post(follow_up_url(Run.objects.get(turn=3)), {"message": "Never mind"})

    sent = [r.json for r in fake.requests_to("/v1/responses", "POST")]
    assert [body["input"] for body in sent] == [
        "Hi",
        "Now fail [fail]",
        "Now fail [fail]",
        "Never mind",
    ]
    # Each goes on from the last answered turn: the failed ones are not carried on.
    assert [body.get("previous_response_id") for body in sent[1:]] == [turns[0].response_id] * 3
    assert Run.objects.get(turn=4).status == RunStatus.COMPLETED


def test_a_completed_turn_has_nothing_to_retry(team, connection, member, member_client, fake):
    assistant = make_assistant(team, connection, sync_state="pending")
    first = make_run(assistant, started_by=member)

    response = member_client.post(retry_url(first), follow=True)

    assert "The last turn did not fail: there is nothing to retry." in response.content.decode()
    assert Run.objects.count() == 1 and fake.requests == []


def test_a_deleted_assistants_conversation_cannot_go_on(
    team, connection, member, member_client, fake
):
    assistant = make_assistant(team, connection, sync_state="pending")
    first = make_run(assistant, started_by=member)
    assistant.delete()

    page = member_client.get(page_url(first)).content.decode()
    response = member_client.post(follow_up_url(first), {"message": "Hello?"})

    assert "The assistant was deleted, so this conversation cannot go on." in page
    assert "The assistant was deleted" in response.content.decode()
    assert Run.objects.count() == 1 and fake.requests == []


def test_who_may_follow_up(users, team, connection, member, viewer_client, fake):
    assistant = make_assistant(team, connection, sync_state="pending")
    first = make_run(assistant, started_by=member)

    check_refusals(
        users, follow_up_url(first), min_role="member", method="post", data={"message": "Hi"}
    )
    check_refusals(users, retry_url(first), min_role="member", method="post")
    page = viewer_client.get(page_url(first)).content.decode()

    assert "you can read this conversation, but not continue it" in page
    assert follow_up_url(first) not in page
    assert Run.objects.count() == 1 and fake.requests == []
    bad = follow_up_url(first).replace(str(first.pk), str(uuid.uuid4()))
    assert viewer_client.post(bad, {"message": "Hi"}).status_code == 403


def test_another_teams_conversation_is_not_found(
    team, other_team, connection, member, outsider, fake
):
    """Someone of another team, through their own team's address, finds no such run."""
    assistant = make_assistant(team, connection, sync_state="pending")
    first = make_run(assistant, started_by=member)
    client = client_for(outsider)

    for name in ("run_follow_up", "run_retry"):
        url = reverse(f"assistants:{name}", kwargs={"team_id": other_team.pk, "run_id": first.pk})
        assert client.post(url, {"message": "Hi"}).status_code == 404
    assert Run.objects.count() == 1 and fake.requests == []


def test_the_newest_turn_is_live_and_says_to_reload_without_javascript(
    team, connection, member, member_client, fake
):
    assistant = make_assistant(team, connection, sync_state="pending")
    (first,) = converse(member_client, assistant, ["What is 2 + 2?"])
    member_client.post(follow_up_url(first), {"message": "Go on [slow]"})
    newest = Run.objects.get(turn=2)
    assert newest.status == RunStatus.IN_PROGRESS

    content = member_client.get(page_url(first)).content.decode()

    refresh = reverse("assistants:run_refresh", kwargs={"team_id": team.pk, "run_id": newest.pk})
    assert f'hx-post="{refresh}"' in content and content.count("hx-post=") == 1
    # Shown only with JavaScript (html.js), and the other way round.
    assert '<span class="js-only">This part of the page updates by itself.</span>' in content
    assert '<span class="js-hide">Reload the page to see how it goes on.</span>' in content


def test_an_older_page_polling_learns_the_conversation_went_on(
    team, connection, member, member_client, fake
):
    assistant = make_assistant(team, connection, sync_state="pending")
    first = make_run(assistant, started_by=member)
    member_client.post(follow_up_url(first), {"message": "Go on"})

    status = reverse("assistants:run_status", kwargs={"team_id": team.pk, "run_id": first.pk})
    content = member_client.get(status).content.decode()

    assert "This conversation has gone on since" in content
    assert follow_up_url(first) not in content


def test_existing_runs_are_one_turn_conversations(team, connection, member, member_client):
    assistant = make_assistant(team, connection, sync_state="pending")
    run = make_run(assistant, started_by=member, output_text="Four.")

    content = member_client.get(page_url(run)).content.decode()

    assert run.conversation_id == run.pk and run.turn == 1 and run.is_latest
    assert "Conversation (" not in content  # one turn: no conversation heading
    assert "Continue the conversation" in content


def test_a_follow_up_goes_through_the_runs_start_rules(
    team, connection, member, member_client, fake
):
    """A follow-up is started by the same task as any run: a start sent and never answered
    (its consumer killed) is not sent again but ends explained, and it can then be retried
    (its message sent with the retry: whether the lost start reached the thread is unknown)."""
    from datetime import timedelta

    from django.utils import timezone

    from assistants import services
    from assistants.tasks import run_begin_step, start_send_window

    assistant = make_assistant(team, connection, sync_state="pending")
    (first,) = converse(member_client, assistant, ["What is 2 + 2?"])
    turn, claim = services.run_follow_up(run=first, user=member, message="And times 3?")
    assert claim is None  # the assistant is on the provider already
    long_ago = timezone.now() - start_send_window() - timedelta(seconds=1)
    Run.objects.filter(pk=turn.pk).update(start_sent_at=long_ago)
    thread_runs = f"/v1/threads/{first.thread_id}/runs"

    run_begin_step(run_id=turn.pk, user_id=member.pk)

    turn.refresh_from_db()
    assert turn.status == RunStatus.FAILED
    assert turn.last_error_code == services.START_LOST_CODE
    assert fake.requests_to(thread_runs, "POST") == []
    content = member_client.get(page_url(turn)).content.decode()
    assert "Retry this message" in content and "did not send it again" in content

    member_client.post(retry_url(turn))

    retry = Run.objects.get(turn=3)
    assert retry.status == RunStatus.COMPLETED and retry.input == "And times 3?"
    (sent,) = fake.requests_to(thread_runs, "POST")
    assert sent.json["additional_messages"] == [{"role": "user", "content": "And times 3?"}]


def test_a_follow_up_waits_for_a_push_under_way(team, connection, member, member_client, fake):
    """The assistant was edited and its push holds it: the follow-up sends nothing and asks to
    try again in a moment (as starting a run does)."""
    from django.utils import timezone

    from assistants.models import Assistant, SyncState

    assistant = make_assistant(team, connection, sync_state="pending")
    (first,) = converse(member_client, assistant, ["What is 2 + 2?"])
    Assistant.objects.filter(pk=assistant.pk).update(
        sync_state=SyncState.PENDING, sync_claimed_at=timezone.now()
    )
    before = len(fake.requests)

    response = member_client.post(follow_up_url(first), {"message": "And times 3?"})

    assert response.status_code == 200
    assert "send your follow-up again in a moment" in response.content.decode()
    assert Run.objects.count() == 1 and len(fake.requests) == before


def test_a_follow_up_that_read_an_old_newest_turn_is_refused(
    team, connection, member, fake, monkeypatch
):
    """Two follow-ups at once on two processes: both read turn 1 as the newest, one records
    turn 2 first; the other's compare-and-swap on "the newest turn, ended" then finds nothing
    and it is refused, not recorded as a second turn 2 nor a turn 3."""
    from assistants import services
    from assistants.services import runs as run_services

    assistant = make_assistant(team, connection, remote_id="asst_abc123")  # nothing to push
    first = make_run(assistant, started_by=member)
    stale = Run.objects.get(pk=first.pk)
    services.run_follow_up(run=first, user=member, message="One")
    monkeypatch.setattr(run_services, "conversation_latest", lambda run: stale)

    with pytest.raises(services.FollowUpRefused) as refused:
        services.run_follow_up(run=first, user=member, message="Two")

    assert refused.value.reason == services.FollowUpRefused.TURN_RUNNING
    assert list(Run.objects.order_by("turn").values_list("turn", "input", "is_latest")) == [
        (1, "What is 2 + 2?", False),
        (2, "One", True),
    ]


def test_the_status_filter_reads_the_newest_turn(team, connection, member, member_client, fake):
    assistant = make_assistant(team, connection, sync_state="pending")
    converse(member_client, assistant, ["Fail first [fail]", "Then fine"])
    runs = reverse("assistants:runs", kwargs={"team_id": team.pk})

    completed = member_client.get(runs, {"status": "completed"}).content.decode()
    failed = member_client.get(runs, {"status": "failed"}).content.decode()

    assert "Fail first [fail]" in completed  # the conversation, by its first message
    assert "Fail first [fail]" not in failed and "No run matches this filter." in failed
