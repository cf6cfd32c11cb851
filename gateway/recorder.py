"""The record of each gateway call, written off the hot path.

The pass-through hands each finished call to `record` (an append to a list in memory: no I/O).
A background thread writes what has gathered every `FLUSH_SECONDS` in one `bulk_create`, and
updates each token's last use once per flush (the latest call wins). `flush` writes at once:
the ASGI lifespan calls it at a clean shutdown, so none is lost then. A failed write is logged
(its class only) and the batch dropped, never retried forever; past `MAX_PENDING` calls waiting
(the database down for long), the newest are dropped and counted.

Never a body, a prompt, an output, a query string or a header: only what `Call` holds.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from uuid import UUID

from django.db import connection, transaction
from django.db.models import Q

from gateway.models import ApiToken, GatewayCall
from lib import events
from lib.dbwork import db_work

__all__ = ["Call", "flush", "record", "start", "stop"]

logger = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0
MAX_PENDING = 100_000
BATCH_SIZE = 100


@dataclass(slots=True)
class Call:
    team_id: UUID
    token_id: UUID | None
    user_id: UUID | None
    connection_id: UUID | None
    family: str
    method: str
    path: str
    model: str
    status: int
    refused: bool
    request_id: str
    streamed: bool
    latency_ms: int | None
    first_byte_ms: int | None
    input_tokens: int | None
    cached_tokens: int | None
    output_tokens: int | None
    created_at: datetime
    address: str | None
    refusal: str = ""  # gateway.models.Refusal, when one of those refused it

    @classmethod
    def begin(
        cls,
        *,
        team_id: UUID,
        token_id: UUID | None,
        user_id: UUID | None,
        connection_id: UUID | None,
        method: str,
        path: str,
        address: str | None,
    ) -> Call:
        """A call as the gateway starts it, now: refused until it is forwarded, nothing known
        of its family, model or answer yet."""
        return cls(
            team_id=team_id,
            token_id=token_id,
            user_id=user_id,
            connection_id=connection_id,
            family="",
            method=method,
            path=path,
            model="",
            status=0,
            refused=True,
            request_id="",
            streamed=False,
            latency_ms=None,
            first_byte_ms=None,
            input_tokens=None,
            cached_tokens=None,
            output_tokens=None,
            created_at=datetime.now(UTC),
            address=address,
        )


_pending: list[Call] = []
_lock = threading.Lock()
_write_lock = threading.Lock()
_wake = threading.Event()
_stopping = threading.Event()
_thread: threading.Thread | None = None
dropped = 0


def record(call: Call) -> None:
    """Keep `call` for the next write (cheap; never blocks on I/O)."""
    global dropped
    if len(_pending) >= MAX_PENDING:
        dropped += 1
        return
    _pending.append(call)  # list.append is atomic under the GIL
    if _thread is None or not _thread.is_alive():
        start()


def _take() -> list[Call]:
    global _pending
    with _lock:
        taken, _pending = _pending, []
    return taken


def _last_uses(calls: list[Call]) -> dict[UUID, tuple[datetime, str | None]]:
    latest: dict[UUID, tuple[datetime, str | None]] = {}
    for call in calls:
        if call.token_id is None:
            continue
        known = latest.get(call.token_id)
        if known is None or known[0] <= call.created_at:
            latest[call.token_id] = (call.created_at, call.address)
    return latest


# The columns written, in `Call`'s terms (the attribute of each).
_COLUMNS = (
    ("team_id", "team_id"),
    ("token_id", "token_id"),
    ("user_id", "user_id"),
    ("connection_id", "connection_id"),
    ("family", "family"),
    ("method", "method"),
    ("path", "path"),
    ("model", "model"),
    ("status", "status"),
    ("refused", "refused"),
    ("refusal", "refusal"),
    ("request_id", "request_id"),
    ("streamed", "streamed"),
    ("latency_ms", "latency_ms"),
    ("first_byte_ms", "first_byte_ms"),
    ("input_tokens", "input_tokens"),
    ("cached_tokens", "cached_tokens"),
    ("output_tokens", "output_tokens"),
    ("created_at", "created_at"),
)
_UUIDS = frozenset({"team_id", "token_id", "user_id", "connection_id"})


def _rows(calls: list[Call], existing: set[UUID]) -> list[tuple]:
    """The calls as rows for `executemany`: plain values, as the backend takes them.

    Written with one INSERT per batch rather than `bulk_create`: making a model instance per
    call costs the web process's event loop (it shares the interpreter) far more than it
    costs the database."""
    hex_uuids = connection.vendor != "postgresql"
    adapt_when = connection.ops.adapt_datetimefield_value
    rows = []
    for call in calls:
        row = []
        for column, attribute in _COLUMNS:
            value = getattr(call, attribute)
            if column in _UUIDS and value is not None:
                if column == "token_id" and value not in existing:
                    value = None  # deleted since: keep the call without the link
                elif hex_uuids:
                    value = value.hex
            elif column == "created_at":
                value = adapt_when(value)
            elif column in ("path", "model", "request_id"):
                value = value[:200]
            row.append(value)
        rows.append(tuple(row))
    return rows


def _write(calls: list[Call]) -> None:
    table = connection.ops.quote_name(GatewayCall._meta.db_table)
    columns = ", ".join(connection.ops.quote_name(column) for column, _ in _COLUMNS)
    marks = ", ".join(["%s"] * len(_COLUMNS))
    sql = f"INSERT INTO {table} ({columns}) VALUES ({marks})"  # noqa: S608 (names are ours)
    with transaction.atomic():
        token_ids = {call.token_id for call in calls if call.token_id is not None}
        existing = set(ApiToken.objects.filter(pk__in=token_ids).values_list("pk", flat=True))
        rows = _rows(calls, existing)
        with connection.cursor() as cursor:
            for start in range(0, len(rows), BATCH_SIZE):
                cursor.executemany(sql, rows[start : start + BATCH_SIZE])
                time.sleep(0)  # let the event loop's thread have the interpreter
        for token_id, (when, address) in _last_uses(calls).items():
            if token_id not in existing:
                continue
            ApiToken.objects.filter(
                Q(last_used_at__isnull=True) | Q(last_used_at__lte=when), pk=token_id
            ).update(last_used_at=when, last_used_ip=address)


def flush() -> int:
    """Write every call waiting now; returns how many were written."""
    with _write_lock:
        calls = _take()
        if not calls:
            return 0
        with db_work():  # the connection goes back (to the pool) after each batch
            try:
                _write(calls)
            except Exception as error:  # any database failure: say so, drop the batch
                logger.error(
                    "Gateway: %d call records could not be written (%s).",
                    len(calls),
                    type(error).__name__,
                )
                return 0
            events.gateway_calls_stored.send(
                GatewayCall, team_ids=frozenset(call.team_id for call in calls)
            )
        return len(calls)


def _run() -> None:
    while not _stopping.is_set():
        _wake.wait(FLUSH_SECONDS)
        _wake.clear()
        flush()


def start() -> None:
    """Start the writing thread (idempotent)."""
    global _thread
    with _lock:
        if _thread is not None and _thread.is_alive():
            return
        _stopping.clear()
        _thread = threading.Thread(target=_run, name="gateway-recorder", daemon=True)
        _thread.start()


def stop(timeout: float = 10.0) -> None:
    """Stop the thread and write what is left (a clean shutdown)."""
    global _thread
    _stopping.set()
    _wake.set()
    thread = _thread
    if thread is not None and thread is not threading.current_thread():
        thread.join(timeout)
    _thread = None
    flush()


def pending() -> int:
    return len(_pending)


def wait_written(timeout: float = 5.0) -> None:
    """Tests: until what was recorded so far is written."""
    deadline = time.monotonic() + timeout
    while _pending and time.monotonic() < deadline:
        flush()
    with _write_lock:
        pass
