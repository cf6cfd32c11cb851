"""The getting-started checklist on the team home: add a connection, see its models, create an
assistant, run it, invite someone (and whatever other apps register in `lib.onboarding`, such
as the gateway's API token). Each step is ticked once the team's rows show it done; the list
is hidden once every step is done or an admin dismissed it for the team."""

from dataclasses import dataclass

from django.db import transaction
from django.db.models import BooleanField, Exists, ExpressionWrapper, Q
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts.access import TeamAccess
from accounts.models import Invitation, Membership, Role, Team, User
from assistants.models import Assistant, Run
from connections.models import Connection
from dashboard import home_cache
from dashboard.models import ChecklistDismissal
from lib import onboarding


def _invited(team: Team) -> Q:
    return Q(Exists(Invitation.objects.filter(team=team))) | Q(
        Exists(Membership.objects.filter(team=team).exclude(role=Role.OWNER))
    )


STEPS = [
    onboarding.Step(
        key="connection",
        order=10,
        title=_("Add a connection"),
        hint=_("An OpenAI API key the whole team can use without seeing it."),
        min_role=Role.ADMIN,
        done=lambda team: Exists(Connection.objects.filter(team=team)),
        url=lambda team: reverse("connections:create", args=[team.pk]),
        watch=("connections.Connection",),
    ),
    onboarding.Step(
        key="models",
        order=20,
        title=_("See its models"),
        hint=_("Open a connection and choose Models: the models its key may use."),
        min_role=Role.VIEWER,
        done=lambda team: Exists(
            Connection.objects.filter(team=team, models_cached_at__isnull=False)
        ),
        url=lambda team: reverse("connections:list", args=[team.pk]),
        watch=("connections.Connection",),
    ),
    onboarding.Step(
        key="assistant",
        order=30,
        title=_("Create an assistant"),
        hint=_("A model with its instructions, ready for anyone in the team to run."),
        min_role=Role.MEMBER,
        done=lambda team: Exists(Assistant.objects.filter(team=team)),
        url=lambda team: reverse("assistants:create", args=[team.pk]),
        watch=("assistants.Assistant",),
    ),
    onboarding.Step(
        key="run",
        order=40,
        title=_("Run it"),
        hint=_("Open the assistant, write a message and start a run."),
        min_role=Role.MEMBER,
        done=lambda team: Exists(Run.objects.filter(team=team)),
        url=lambda team: reverse("assistants:list", args=[team.pk]),
        watch=("assistants.Run",),
    ),
    onboarding.Step(
        key="invite",
        order=50,
        title=_("Invite someone"),
        hint=_("Give each person a role: viewers look, members build and run, admins manage."),
        min_role=Role.ADMIN,
        done=_invited,
        url=lambda team: reverse("accounts:member_invite", args=[team.pk]),
        watch=("accounts.Invitation", "accounts.Membership"),
    ),
]


def register_steps() -> None:
    for step in STEPS:
        onboarding.register(step)


@dataclass(frozen=True)
class ChecklistItem:
    step: onboarding.Step
    done: bool
    url: str | None  # None: the reader's role cannot do this step


@dataclass(frozen=True)
class Checklist:
    items: list[ChecklistItem]
    can_dismiss: bool

    @property
    def done_count(self) -> int:
        return sum(item.done for item in self.items)


def _checklist_row(team: Team, steps: list[onboarding.Step]) -> dict[str, bool]:
    """Which steps the team has done, and whether it dismissed the list: one query."""
    expressions = {
        f"step_{step.key}": ExpressionWrapper(Q(step.done(team)), output_field=BooleanField())
        for step in steps
    }
    expressions["dismissed"] = Exists(ChecklistDismissal.objects.filter(team=team))
    row = Team.objects.filter(pk=team.pk).values(**expressions).get()
    return {key: bool(value) for key, value in row.items()}


def team_checklist(*, access: TeamAccess) -> Checklist | None:
    """The checklist for this reader, or None when it is hidden (every step done, or
    dismissed). Kept in the cache until a row a step reads changes (`Step.watch`,
    dashboard.home_cache); else one query, whatever the number of steps."""
    team = access.team
    steps = onboarding.steps()
    if home_cache.checklist_cacheable(steps):
        variant = ",".join(step.key for step in steps)
        row = home_cache.values_get(
            team.pk,
            {
                "checklist": (
                    home_cache.CHECKLIST_PARTS,
                    variant,
                    lambda: _checklist_row(team, steps),
                    home_cache.TIMEOUTS[home_cache.Part.CHECKLIST],
                )
            },
        )["checklist"]
    else:
        row = _checklist_row(team, steps)
    if row["dismissed"]:
        return None
    items = [
        ChecklistItem(
            step=step,
            done=row[f"step_{step.key}"],
            url=step.url(team) if access.can(Role(step.min_role)) else None,
        )
        for step in steps
    ]
    if all(item.done for item in items):
        return None
    return Checklist(items=items, can_dismiss=access.is_admin)


@transaction.atomic
def checklist_dismiss(*, team: Team, actor: User) -> None:
    """Hide the checklist for the whole team (kept hidden once dismissed)."""
    ChecklistDismissal.objects.get_or_create(team=team, defaults={"dismissed_by": actor})
