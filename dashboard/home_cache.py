"""The team home's parts, cached (Django's cache) and dropped when what they show changes.

Each part of the home page (`Part`) is computed by `dashboard.overview` and kept under a key
that carries the part's generation for the team: a change to the rows a part shows sets a new
generation, so the next page computes the part again and the old value is simply never read
(it expires on its own). Reading costs two cache round trips (the generations, then the
parts), whatever the number of parts.

What changes which part is said once, in `connect()`: the models' own signals for rows saved
with `save()`, and `lib.events` for the writes the lower apps make without it (a guarded
UPDATE of a run or a connection, the gateway's batched INSERT). Each part also has a lifetime
(`TIMEOUTS`) as a safety net and for what changes with the clock alone (a run that becomes
overdue, the day that turns).

A generation is set at once and again when the transaction commits: a page computed between
the two, which could still see the old rows, is not kept.
"""

import hashlib
import uuid
from collections.abc import Callable, Iterable
from enum import StrEnum
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.db.models.signals import post_delete, post_save

from lib import events


class Part(StrEnum):
    CONNECTIONS = "connections"  # health counts, the connections table, what needs attention
    SPEND = "spend"  # this month's spend (admins)
    RUNS = "runs"  # runs today, tokens this month, runs in progress
    ERRORS = "errors"  # what went wrong lately
    GATEWAY = "gateway"  # calls through the gateway today
    ADMINS = "admins"  # the admins a viewer or member is told to ask (names and roles)
    CHECKLIST = "checklist"  # the getting-started steps' rows beyond connections and runs


TIMEOUTS = {
    Part.CONNECTIONS: 300,
    Part.SPEND: 300,
    Part.RUNS: 60,  # a run in progress becomes overdue with time alone
    Part.ERRORS: 300,
    Part.GATEWAY: 300,
    Part.ADMINS: 300,
    Part.CHECKLIST: 300,
}
PREFIX = "team-home"


def _generation_key(team_id: Any, part: Part) -> str:
    return f"{PREFIX}:gen:{team_id}:{part}"


def invalidate(team_id: Any, *parts: Part) -> None:
    """Drop the team's cached `parts` (now, and again once the current transaction commits)."""
    if team_id is None:
        return

    def bump() -> None:
        cache.set_many(
            {_generation_key(team_id, part): uuid.uuid4().hex for part in parts}, timeout=None
        )

    bump()
    transaction.on_commit(bump)


def _generations(team_id: Any, parts: Iterable[Part]) -> dict[Part, str]:
    """The current generation of each part of the team (one cache round trip, two for parts
    never seen)."""
    generation_keys = {part: _generation_key(team_id, part) for part in parts}
    generations = cache.get_many(generation_keys.values())
    missing_generations = {
        key: uuid.uuid4().hex for key in generation_keys.values() if key not in generations
    }
    if missing_generations:
        # add, not set: a generation another process set meanwhile stays.
        for key, value in missing_generations.items():
            if not cache.add(key, value, timeout=None):
                value = cache.get(key, value)
            generations[key] = value
    return {part: generations[key] for part, key in generation_keys.items()}


def values_get(
    team_id: Any,
    wanted: dict[str, tuple[tuple[Part, ...], str, Callable[[], Any], int]],
) -> dict[str, Any]:
    """Values of the team that depend on several parts: `{name: (parts, variant, compute,
    timeout)}`. A value is kept under the generations of its `parts`, so a change to any of
    them makes it computed again; `variant` names what else it depends on (the reader's role
    and language, the time). Two cache round trips, whatever the number of values."""
    needed = {part for parts, *_rest in wanted.values() for part in parts}
    generations = _generations(team_id, needed)
    # The generations and the variant, hashed: a value of every part would make a key longer
    # than a cache may take.
    keys = {
        name: ":".join(
            [
                PREFIX,
                str(team_id),
                name,
                hashlib.blake2b(
                    ":".join([*(generations[part] for part in parts), variant]).encode(),
                    digest_size=16,
                ).hexdigest(),
            ]
        )
        for name, (parts, variant, _compute, _timeout) in wanted.items()
    }
    found = cache.get_many(keys.values())
    values: dict[str, Any] = {}
    for name, (_parts, _variant, compute, timeout) in wanted.items():
        key = keys[name]
        if key in found:
            values[name] = found[key]
            continue
        values[name] = compute()
        cache.set(key, values[name], timeout=timeout)
    return values


def parts_get(team_id: Any, wanted: dict[Part, tuple[str, Callable[[], Any]]]) -> dict[Part, Any]:
    """Each wanted part of the team: `{part: (variant, compute)}`, where `variant` names what
    else the value depends on (the reader's role, the day) and `compute` makes it on a miss."""
    values = values_get(
        team_id,
        {
            str(part): ((part,), variant, compute, TIMEOUTS[part])
            for part, (variant, compute) in wanted.items()
        },
    )
    return {part: values[str(part)] for part in wanted}


# --- what changes which part ---------------------------------------------------------------


def _on_model(parts: Iterable[Part], team_of: Callable[[Any], Any]) -> Callable[..., None]:
    parts = tuple(parts)

    def receiver(sender: Any, instance: Any, **kwargs: Any) -> None:
        invalidate(team_of(instance), *parts)

    return receiver


def _team_of_event(event: Any) -> Any:
    # The error history's row names its connection; the team is the connection's.
    connection = event.connection if event.connection_id else None
    return connection.team_id if connection is not None else None


def _team_of_connection(connection_id: Any, team_id: Any) -> Any:
    if team_id is not None:
        return team_id
    from connections.models import Connection

    return Connection.objects.filter(pk=connection_id).values_list("team_id", flat=True).first()


def _on_health(sender: Any, *, connection_id: Any, team_id: Any = None, **kwargs: Any) -> None:
    invalidate(_team_of_connection(connection_id, team_id), Part.CONNECTIONS)


def _on_month_spend(sender: Any, *, connection_id: Any, team_id: Any = None, **kwargs: Any) -> None:
    invalidate(_team_of_connection(connection_id, team_id), Part.SPEND)


def _on_run_stored(sender: Any, *, team_id: Any, **kwargs: Any) -> None:
    invalidate(team_id, Part.RUNS, Part.ERRORS)


def _on_gateway_calls(sender: Any, *, team_ids: Iterable[Any], **kwargs: Any) -> None:
    for team_id in team_ids:
        invalidate(team_id, Part.GATEWAY)


def _on_user(sender: Any, instance: Any, update_fields: Any = None, **kwargs: Any) -> None:
    # A renamed admin is named to readers; signing in (last_login) changes nothing shown.
    if update_fields is not None and set(update_fields) <= {"last_login"}:
        return
    from accounts.models import Membership

    for team_id in Membership.objects.filter(user=instance).values_list("team_id", flat=True):
        invalidate(team_id, Part.ADMINS)


# The checklist's own key carries the connections' and the runs' generations (their changes,
# guarded UPDATEs included, already drop those parts): a step that watches only these needs
# no receiver of its own.
CHECKLIST_PARTS = (Part.CONNECTIONS, Part.RUNS, Part.CHECKLIST)
_COVERED = frozenset({"connections.Connection", "assistants.Run"})
_watched: set[str] = set()


def checklist_cacheable(steps: Iterable[Any]) -> bool:
    """Whether a change to every row the steps read drops the cached checklist: each step
    names what it reads (`watch`), and a receiver listens to it."""
    return all(step.watch and set(step.watch) <= _COVERED | _watched for step in steps)


# Kept here, so that the receivers (weakly referenced by default) live as long as the process.
_RECEIVERS: list[Callable[..., None]] = []


def connect() -> None:
    from assistants.models import Run
    from connections.models import Connection, ConnectionErrorEvent
    from gateway.models import GatewayCall

    def team_id(instance: Any) -> Any:
        return instance.team_id

    # Saved rows; of deletions only a connection's (it takes its runs and errors with it):
    # listening to the deletion of runs or calls would make Django delete them one by one.
    wiring = [
        (Connection, tuple(Part), team_id, True),
        (Run, (Part.RUNS, Part.ERRORS), team_id, False),
        (ConnectionErrorEvent, (Part.ERRORS,), _team_of_event, False),
        (GatewayCall, (Part.GATEWAY,), team_id, False),
    ]
    for model, parts, team_of, on_delete in wiring:
        receiver = _on_model(parts, team_of)
        _RECEIVERS.append(receiver)
        post_save.connect(receiver, sender=model, dispatch_uid=f"team-home-save-{model.__name__}")
        if on_delete:
            post_delete.connect(
                receiver, sender=model, dispatch_uid=f"team-home-delete-{model.__name__}"
            )
    from django.apps import apps

    from accounts.models import Invitation, Membership, User
    from dashboard.models import ChecklistDismissal
    from lib import onboarding

    checklist_wiring = [
        (Membership, (Part.ADMINS, Part.CHECKLIST)),
        (Invitation, (Part.CHECKLIST,)),
        (ChecklistDismissal, (Part.CHECKLIST,)),
    ]
    labels = {label for step in onboarding.steps() for label in step.watch} - _COVERED
    for label in sorted(labels - {"accounts.Membership", "accounts.Invitation"}):
        checklist_wiring.append((apps.get_model(label), (Part.CHECKLIST,)))
    for model, parts in checklist_wiring:
        receiver = _on_model(parts, team_id)
        _RECEIVERS.append(receiver)
        name = model._meta.label
        post_save.connect(receiver, sender=model, dispatch_uid=f"team-home-list-save-{name}")
        post_delete.connect(receiver, sender=model, dispatch_uid=f"team-home-list-delete-{name}")
    _watched.update(labels)
    post_save.connect(_on_user, sender=User, dispatch_uid="team-home-user")
    events.connection_health_stored.connect(_on_health, dispatch_uid="team-home-health")
    events.month_spend_stored.connect(_on_month_spend, dispatch_uid="team-home-spend")
    events.run_stored.connect(_on_run_stored, dispatch_uid="team-home-run")
    events.gateway_calls_stored.connect(_on_gateway_calls, dispatch_uid="team-home-gateway")
