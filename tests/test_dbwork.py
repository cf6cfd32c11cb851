"""Database work outside a request hands its connection back (lib/dbwork.py).

On PostgreSQL (the pool on, as by default) many more threads than the pool holds, each gone
once its work is done, leave the pool free for the next one; a thread that kept its connection
would take a slot with it for good, and the next thread would wait 30 s and fail. On SQLite
the same work simply succeeds.
"""

import asyncio
import threading

import pytest
from django.db import connection

from accounts.models import Team
from lib.dbwork import db_work, to_thread


def _count_teams() -> int:
    return Team.objects.count()


def _in_a_thread_of_its_own() -> list[int]:
    found: list[int] = []

    def work() -> None:
        with db_work():
            found.append(_count_teams())

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(120)
    return found


def _pool_size() -> int:
    return connection.settings_dict.get("OPTIONS", {}).get("pool", {}).get("max_size", 5)


@pytest.mark.django_db(transaction=True)
def test_threads_that_come_and_go_leave_the_pool_free(team):
    rounds = 2 * _pool_size() + 1
    assert [_in_a_thread_of_its_own() for _ in range(rounds)] == [[1]] * rounds


@pytest.mark.django_db(transaction=True)
def test_event_loops_that_come_and_go_leave_the_pool_free(team):
    """Each `asyncio.run` has an executor of its own, whose threads end with it."""

    async def count() -> int:
        return await to_thread(_count_teams)

    rounds = 2 * _pool_size() + 1
    assert [asyncio.run(count()) for _ in range(rounds)] == [1] * rounds


@pytest.mark.django_db
def test_work_inside_a_transaction_leaves_its_connection_alone(team):
    """Inside a transaction (a caller's `atomic`, this test's) the connection is the
    transaction's: handing it back would end the transaction and fail what follows."""
    with db_work():
        assert _count_teams() == 1
    assert Team.objects.get(pk=team.pk).name == "Acme"
