"""The assistants part of the demo (`manage.py demo_seed`): assistants and runs on both run
APIs, in every state, and a three-turn conversation on each, against the fake provider
(`python -m fakeprovider`)."""

import time

from accounts.models import Role, Team, User
from assistants import services
from assistants.models import Assistant, Run
from connections.models import Connection, RunApi

RESPONSES_NAME = "Responses API"

WEATHER_FUNCTION = {
    "name": "get_weather",
    "description": "The weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
}


def _responses_connection(team: Team, user: User, production: Connection) -> Connection:
    """A copy of `production` that runs assistants through the Responses API."""
    connection = Connection.objects.filter(team=team, name=RESPONSES_NAME).first() or Connection(
        team=team, name=RESPONSES_NAME, created_by=user
    )
    connection.base_url = production.base_url
    connection.run_api = RunApi.RESPONSES
    connection.set_api_key(production.api_key())
    connection.full_clean()
    connection.save()
    return connection


def seed_assistants(
    team: Team, users: dict[Role, User], connections: dict[str, Connection]
) -> list[Assistant]:
    """Replace the team's assistants and runs with the demo's (remote copies are made on the
    fake provider)."""
    Run.objects.filter(team=team).delete()
    Assistant.objects.filter(team=team).delete()
    member = users[Role.MEMBER]
    production = connections["Production"]
    responses = _responses_connection(team, users[Role.ADMIN], production)

    def create(connection: Connection, name: str, **data) -> Assistant:
        return services.assistant_create(
            team=team,
            user=member,
            connection=connection,
            data={"name": name, "model": "gpt-4o", **data},
        ).value

    tutor = create(
        production,
        "Math Tutor",
        description="Writes and runs Python to answer maths questions.",
        instructions="You are a personal math tutor. Write and run code to answer questions.",
        tools=[{"type": "code_interpreter"}],
    )
    weather = create(
        production,
        "Weather helper",
        instructions="Answer questions about the weather.",
        tools=[{"type": "function", "function": WEATHER_FUNCTION}],
        metadata={"team": "support"},
    )
    translator = create(
        responses,
        "Translator",
        description="Translates into Spanish.",
        instructions="Translate every message into Spanish.",
        tools=[{"type": "file_search"}],
        temperature=0.3,
    )
    if "Out of credit" in connections:
        create(connections["Out of credit"], "Billing example", instructions="Never synced.")

    for assistant, message in [
        (tutor, "What is 2 + 2?"),
        (tutor, "Integrate x^2 [fail]"),
        (tutor, "Prove Fermat's last theorem [slow]"),
        (weather, "Weather in Madrid? [expire]"),
        (translator, "Good morning, everyone."),
        (translator, "Translate the whole encyclopedia [incomplete]"),
        (translator, "Think about it [slow]"),
    ]:
        services.run_start(assistant=assistant, user=member, message=message)
    _converse(
        member,
        {
            tutor: ["What is 12 × 12?", "And divided by 3?", "Show it as a **table**, please."],
            translator: ["Good night.", "And “see you tomorrow”?", "Now both in one sentence."],
        },
    )
    return list(Assistant.objects.filter(team=team))


# How long the demo waits for a turn's answer before it leaves that conversation as it is.
TURN_WAIT_SECONDS = 15


def _converse(user: User, conversations: dict[Assistant, list[str]]) -> None:
    """A conversation with each assistant, side by side: each question is sent once the answer
    before it has come (the fake provider answers in a couple of seconds); the last turns are
    left to finish by themselves."""
    turns = {
        assistant: services.run_start(assistant=assistant, user=user, message=questions[0]).value
        for assistant, questions in conversations.items()
    }
    for step in (1, 2):
        deadline = time.monotonic() + TURN_WAIT_SECONDS
        while not all(t.is_terminal for t in turns.values()) and time.monotonic() < deadline:
            time.sleep(0.5)  # the fake's clock is real: its runs move on by the second
            turns = {a: services.run_refresh(run=t).value for a, t in turns.items()}
        turns = {a: t for a, t in turns.items() if t.is_terminal}
        for assistant, turn in turns.items():
            message = conversations[assistant][step]
            turn, claim = services.run_follow_up(run=turn, user=user, message=message)
            turns[assistant] = services.run_begin(run=turn, user=user, claim=claim).value
