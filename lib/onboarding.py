"""The getting-started checklist's steps, as a registry any app can add to.

The team home (dashboard) shows the checklist; each app that owns a step registers it from its
`AppConfig.ready()`, so the dashboard need not import an app beside it (the gateway adds its
"Create an API token" step this way):

    from lib.onboarding import Step, register

    register(Step(
        key="api_token",
        order=60,
        title=_("Create an API token"),
        hint=_("Programs call the models through Tablero with it, never with the key."),
        min_role="member",
        done=lambda team: Exists(Token.objects.filter(team=team)),
        url=lambda team: reverse("gateway:tokens", args=[team.pk]),
        watch=("gateway.ApiToken",),
    ))

`done` returns a boolean database expression (an `Exists`, or a `Q` of several) about the
team's rows: the dashboard evaluates every step in one query. `watch` names the models
("app_label.Model") whose saved or deleted rows can change it: the dashboard keeps the
checklist cached until one of them changes (with a step that names none, it reads the steps on
every page). Registering a key again replaces the step (ready() may run more than once in
tests).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Step:
    key: str  # stable, unique: "connection", "models", ...
    order: int  # position in the list; the dashboard's own steps use 10, 20, ... 50
    title: Any  # a lazy translation
    hint: Any  # one sentence: why, or how
    min_role: str  # the lowest role that can do it: "viewer", "member", "admin" or "owner"
    done: Callable[[Any], Any]  # team -> boolean expression (Exists or Q)
    url: Callable[[Any], str]  # team -> where to do it
    watch: tuple[str, ...] = ()  # the models whose rows `done` reads ("app_label.Model")


_steps: dict[str, Step] = {}


def register(step: Step) -> None:
    _steps[step.key] = step


def unregister(key: str) -> None:
    _steps.pop(key, None)


def steps() -> list[Step]:
    return sorted(_steps.values(), key=lambda step: (step.order, step.key))
