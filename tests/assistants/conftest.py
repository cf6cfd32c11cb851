import pytest

from tests.assistants.helpers import fake_connection, make_assistant, make_run


@pytest.fixture
def fake(fake_upstream):
    """The fake provider with runs that finish at once (tests needing time set it)."""
    fake_upstream.run_step_seconds = 0
    return fake_upstream


@pytest.fixture
def connection(team, owner, fake):
    return fake_connection(team, fake, created_by=owner)


@pytest.fixture
def assistant(team, connection, member):
    """An assistant that exists locally only (not on the provider)."""
    return make_assistant(team, connection, created_by=member, sync_state="pending")


@pytest.fixture
def finished_run(assistant, member):
    return make_run(assistant, started_by=member)
