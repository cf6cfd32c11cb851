"""Reads for accounts and teams."""

import datetime
from typing import Any
from uuid import UUID

from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db.models import Case, Count, Q, QuerySet, Value, When
from django.utils import timezone

from accounts.models import ROLE_RANK, AuditEvent, Invitation, Membership, Role, Team, User

# The team switcher's list is kept this long at most; any change to a membership or a team
# forgets it sooner (accounts.apps: switcher_forget on every save and delete).
SWITCHER_SECONDS = 600


def _switcher_key(user_id: UUID) -> str:
    return f"accounts:switcher:{user_id}"


def switcher_memberships(*, user_id: UUID) -> list[Membership]:
    """Every team of the user, by name, with the role there: the team switcher in the frame of
    every page. Read from the cache when a page read it lately (the query is the frame's
    largest cost), else from the database."""
    key = _switcher_key(user_id)
    found = cache.get(key)
    if found is None:
        found = list(
            Membership.objects.filter(user_id=user_id).select_related("team").order_by("team__name")
        )
        cache.set(key, found, SWITCHER_SECONDS)
    return found


def switcher_forget(*, user_ids: list[UUID]) -> None:
    """The switcher lists of these users change: read them again from the database."""
    cache.delete_many([_switcher_key(user_id) for user_id in user_ids])


# What a list of members shows: the membership and who it is (not the password hash and the
# rest of the user's row).
MEMBER_COLUMNS = ("id", "team_id", "user", "role", "created_at", "user__name", "user__email")


class MemberListing:
    """The team's memberships, owners first, then admins, members and viewers, each by email;
    for lib.pagination, which counts it and reads one slice (a page) of it.

    The rank is not computed per row and sorted (that sorts the whole team for every page):
    one query counts the members of each role (index accounts_member_team_role), and a page
    reads each role it spans by email, at most four queries that the users' email index
    serves, whatever the size of the team."""

    ORDER = sorted(ROLE_RANK, key=ROLE_RANK.__getitem__, reverse=True)  # owner first

    def __init__(self, team: Team) -> None:
        self.team = team
        self._counts: list[tuple[Role, int]] | None = None

    def counts(self) -> list[tuple[Role, int]]:
        """(role, how many have it), in the order the list shows them."""
        if self._counts is None:
            found = dict(
                Membership.objects.filter(team=self.team)
                .order_by()
                .values_list("role")
                .annotate(n=Count("*"))
            )
            self._counts = [(role, found.get(role, 0)) for role in self.ORDER]
        return self._counts

    @property
    def owners(self) -> int:
        return dict(self.counts())[Role.OWNER]

    def count(self) -> int:
        return sum(n for _role, n in self.counts())

    def __len__(self) -> int:
        return self.count()

    def __getitem__(self, index: int | slice) -> Any:
        if not isinstance(index, slice):
            return self[index : index + 1][0]
        start, stop, _step = index.indices(self.count())
        rows: list[Membership] = []
        offset = 0
        for role, n in self.counts():
            low, high = max(start - offset, 0), min(stop - offset, n)
            if low < high:
                rows.extend(
                    Membership.objects.filter(team=self.team, role=role)
                    .select_related("user")
                    .only(*MEMBER_COLUMNS)
                    .order_by("user__email")[low:high]
                )
            offset += n
        return rows


def member_list(*, team: Team) -> MemberListing:
    """The team's memberships, owners first, then by email (one page at a time)."""
    return MemberListing(team)


ADMINS_NAMED = 3


def team_admin_names(*, team: Team, limit: int = ADMINS_NAMED) -> list[str]:
    """Who a viewer or member asks when something needs an admin: the names of the team's
    admins and owners (admins first: they are the ones who look after connections), at most
    `limit`."""
    admins = (
        Membership.objects.filter(team=team, role__in=[Role.ADMIN, Role.OWNER])
        .select_related("user")
        .annotate(owner=Case(When(role=Role.OWNER, then=Value(1)), default=Value(0)))
        .order_by("owner", "user__name", "user__email")[:limit]
    )
    return [membership.user.get_full_name() for membership in admins]


def owner_count(*, team: Team) -> int:
    return Membership.objects.filter(team=team, role=Role.OWNER).count()


def team_user_list(*, team: Team) -> QuerySet[User]:
    """The team's members, and the former members its audit log still names as actors (whose
    doings are what an admin looks for after removing someone)."""
    members = Membership.objects.filter(team=team).values("user_id")
    actors = AuditEvent.objects.filter(team=team, actor__isnull=False).values("actor_id")
    return User.objects.filter(Q(pk__in=members) | Q(pk__in=actors)).order_by("email")


# Of who invited, the pending invitations show the email; their password hash and the rest of
# their row stay behind (the invitation's own columns are all small and all shown or checked).
INVITER_DEFERRED = ("password", "last_login", "is_superuser", "is_staff", "date_joined")


def invitation_pending_list(*, team: Team) -> QuerySet[Invitation]:
    return (
        Invitation.objects.pending()
        .filter(team=team)
        .select_related("invited_by")
        .defer(*(f"invited_by__{name}" for name in INVITER_DEFERRED))
        .order_by("-created_at")
    )


def invitation_pending_get(*, team: Team, pk: object) -> Invitation | None:
    """The team's pending invitation `pk`, or None (a malformed id included)."""
    try:
        return invitation_pending_list(team=team).filter(pk=pk).first()
    except (ValueError, ValidationError):
        return None


def _start_of_day(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


AUDIT_LIST_FIELDS = (
    "team_id",
    "actor_id",
    "actor_email",
    "action",
    "target_type",
    "target_id",
    "target_repr",
    "data",
    "created_at",
)


def audit_event_list(
    *,
    team: Team,
    actor_id: UUID | None = None,
    action: str | None = None,
    since: datetime.date | None = None,
    until: datetime.date | None = None,
    connection_id: str | None = None,
    who: str = "",
    target: str = "",
) -> QuerySet[AuditEvent]:
    """The team's audit events, newest first; `since` and `until` are whole days, inclusive;
    `connection_id` keeps the events whose target is that connection; `who` searches the
    actor's email and name, `target` the target's name. Only the columns the log shows (and
    its export writes) are read: of the actor, the name and the email."""
    events = (
        AuditEvent.objects.filter(team=team)
        .select_related("actor")
        .only(*AUDIT_LIST_FIELDS, "actor__name", "actor__email")
    )
    if actor_id is not None:
        events = events.filter(actor_id=actor_id)
    if who:
        events = events.filter(Q(actor_email__icontains=who) | Q(actor__name__icontains=who))
    if target:
        events = events.filter(target_repr__icontains=target)
    if connection_id:
        events = events.filter(target_type=CONNECTION_TARGET, target_id=connection_id)
    if action:
        events = events.filter(action=action)
    # The first and the last day a date can name bound nothing (and would overflow when the
    # day's start is moved to UTC or to the next day).
    if since is not None and since > datetime.date.min:
        events = events.filter(created_at__gte=_start_of_day(since))
    if until is not None and until < datetime.date.max:
        events = events.filter(created_at__lt=_start_of_day(until + datetime.timedelta(days=1)))
    return events.order_by("-created_at", "-pk")


# AuditEvent.target_type of events about a connection (its model name).
CONNECTION_TARGET = "connection"


def audit_connection_name(*, team: Team, target_id: str) -> str | None:
    """The name the team's audit log last gave connection `target_id` (removed ones too), or
    None when the log never mentions it."""
    return (
        AuditEvent.objects.filter(team=team, target_type=CONNECTION_TARGET, target_id=target_id)
        .order_by("-created_at")
        .values_list("target_repr", flat=True)
        .first()
    )
