import pytest

from connections import services as connection_services
from tests.assistants.helpers import fake_connection, make_assistant, make_run


@pytest.fixture
def fake(fake_upstream):
    """The fake provider with runs that finish at once (tests needing time set it)."""
    fake_upstream.run_step_seconds = 0
    return fake_upstream


@pytest.fixture
def connection(team, owner, fake):
    """A connection whose model list was fetched, as adding it through its page does."""
    connection = fake_connection(team, fake, created_by=owner)
    connection_services.models_refresh(connection=connection, user=None)
    fake.requests.clear()
    return connection


@pytest.fixture
def assistant(team, connection, member):
    """An assistant that exists locally only (not on the provider)."""
    return make_assistant(team, connection, created_by=member, sync_state="pending")


@pytest.fixture
def finished_run(assistant, member):
    return make_run(assistant, started_by=member)
