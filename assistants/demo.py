"""The assistants part of the demo (`manage.py demo_seed`): assistants and runs on both run
APIs, in every state, against the fake provider (`python -m fakeprovider`)."""

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
    return list(Assistant.objects.filter(team=team))
