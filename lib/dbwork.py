"""Database work outside Django's request cycle hands its connection back when it is done.

Django opens a connection in the thread that first queries, keeps it with that thread, and
hands it back when a request ends (`request_finished` → `close_old_connections`). A thread
that serves no request has no such end: the gateway's threads (asyncio.to_thread's executor,
the call recorder, the grants refresher, the fair-share writer) and a task-queue signal
handler would keep what they opened for as long as the thread lives, and a thread that ends
(an event loop's executor shut down) takes it along unreturned. With PostgreSQL's pool on
(`DATABASE_POOL_SIZE`), each such connection is a pool slot taken for good, until the pages
wait for one in vain (`PoolTimeout`).

So each unit of such work runs inside `db_work()` (or, from async code, through `to_thread`),
which does what a request's start and end do: before, drop a connection that broke or aged;
after, hand it back (with the pool, to the pool at once; without, it stays `CONN_MAX_AGE`
seconds, as a page's does). A connection inside a transaction (an `atomic` block of whoever
called, a test's) is left alone: that transaction is someone else's unit of work.

Huey's tasks need nothing of this: djhuey's `db_task` and `db_periodic_task` close around each
task already (outside immediate mode).
"""

import asyncio
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from typing import ParamSpec, TypeVar

from django.db import connections

__all__ = ["db_work", "to_thread"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")


def _hand_back() -> None:
    """`django.db.close_old_connections`, except for a connection inside a transaction. Never
    raises: a connection that fails to close is forgotten all the same (Django drops it), and
    the thread (a recorder, a writer) must live on."""
    for connection in connections.all(initialized_only=True):
        if connection.in_atomic_block:
            continue
        try:
            connection.close_if_unusable_or_obsolete()
        except Exception as error:
            logger.warning(
                "A database connection could not be handed back (%s).", type(error).__name__
            )


@contextmanager
def db_work() -> Iterator[None]:
    """One unit of database work in a thread outside a request (also a decorator)."""
    _hand_back()
    try:
        yield
    finally:
        _hand_back()


def _in_db_work(function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    with db_work():
        return function(*args, **kwargs)


async def to_thread(function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """`asyncio.to_thread` for blocking work that may use the database: the executor's thread
    hands its connection back when `function` returns."""
    return await asyncio.to_thread(partial(_in_db_work, function, *args, **kwargs))
