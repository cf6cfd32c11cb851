"""What the team used through Tablero: runs and tokens per assistant, per member and per day.

Read from the `Run` rows Tablero started (not from the provider), aggregated in the database:
a fixed handful of queries whatever the number of runs. Days are days in the server's time
zone (TIME_ZONE). A run's tokens are its `total_tokens`, else input plus output, else none.
"""

import datetime
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from django.db.models import Count, F, IntegerField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from accounts.models import Team
from assistants.models import Run, RunStatus
from connections import charts
from lib.pagination import Mapped

WINDOW_DAYS = 30

RUN_TOKENS = Coalesce(
    F("total_tokens"), F("input_tokens") + F("output_tokens"), output_field=IntegerField()
)


def _sums() -> dict[str, Any]:
    zero = Value(0)
    return {
        "runs": Count("pk"),
        "failed": Count("pk", filter=Q(status__in=[RunStatus.FAILED, RunStatus.EXPIRED])),
        "input": Coalesce(Sum("input_tokens"), zero),
        "output": Coalesce(Sum("output_tokens"), zero),
        "tokens": Coalesce(Sum(RUN_TOKENS), zero),
    }


@dataclass(frozen=True)
class UsageRow:
    label: str
    runs: int
    failed: int
    input: int
    output: int
    tokens: int
    key: Any = None  # the assistant's or member's id (None when it is gone)
    gone: bool = False


@dataclass
class Usage:
    since: datetime.date
    until: datetime.date
    totals: UsageRow
    per_assistant: Mapped  # of UsageRow, read a page at a time
    per_member: Mapped
    per_day: list[tuple[datetime.date, UsageRow]] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return self.totals.runs == 0


def usage_window(today: datetime.date | None = None) -> tuple[datetime.date, datetime.date]:
    """Today and the 29 days before it, in the server's time zone."""
    until = today or timezone.localdate()
    return until - datetime.timedelta(days=WINDOW_DAYS - 1), until


def _start_of(day: datetime.date) -> datetime.datetime:
    return timezone.make_aware(datetime.datetime.combine(day, datetime.time.min))


def _runs(
    *, team: Team, since: datetime.date, connection_id: UUID | None, connection_name: str = ""
) -> QuerySet[Run]:
    runs = Run.objects.filter(team=team, created_at__gte=_start_of(since))
    if connection_id is not None:
        runs = runs.filter(connection_id=connection_id)
    if connection_name:
        runs = runs.filter(connection__name__icontains=connection_name)
    return runs


def _row(label: str, values: dict[str, Any], **extra: Any) -> UsageRow:
    return UsageRow(
        label=label,
        runs=values["runs"],
        failed=values["failed"],
        input=values["input"],
        output=values["output"],
        tokens=values["tokens"],
        **extra,
    )


def usage_summary(
    *,
    team: Team,
    connection_id: UUID | None = None,
    connection_name: str = "",
    today: datetime.date | None = None,
) -> Usage:
    """The team's usage over the last 30 days (optionally through one connection, or those
    whose name contains `connection_name`)."""
    since, until = usage_window(today)
    runs = _runs(
        team=team, since=since, connection_id=connection_id, connection_name=connection_name
    )

    totals = _row(_("All runs"), runs.aggregate(**_sums()))

    # One row per assistant under its current name (a renamed assistant's runs carry its old
    # name); the runs of deleted assistants are grouped by the name they kept.
    # Read a page at a time (lib.pagination.Mapped): a team may have thousands of each.
    per_assistant = Mapped(
        runs.values("assistant_id", label=Coalesce("assistant__name", "assistant_name"))
        .annotate(**_sums())
        .order_by("-tokens", "-runs", "label", "assistant_id"),
        lambda values: _row(
            values["label"] or _("Unnamed assistant"),
            values,
            key=values["assistant_id"],
            gone=values["assistant_id"] is None,
        ),
    )

    per_member = Mapped(
        runs.values("started_by_id", "started_by__name", "started_by__email")
        .annotate(**_sums())
        .order_by("-tokens", "-runs", "started_by__email", "started_by_id"),
        lambda values: _row(
            values["started_by__name"] or values["started_by__email"] or _("Removed account"),
            values,
            key=values["started_by_id"],
            gone=values["started_by_id"] is None,
        ),
    )

    by_day = {
        values["day"]: values
        for values in runs.annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(**_sums())
        .order_by("day")
    }
    empty = {"runs": 0, "failed": 0, "input": 0, "output": 0, "tokens": 0}
    per_day = []
    for offset in range(WINDOW_DAYS):
        day = since + datetime.timedelta(days=offset)
        per_day.append((day, _row(date_format(day, "DATE_FORMAT"), by_day.get(day, empty))))

    return Usage(
        since=since,
        until=until,
        totals=totals,
        per_assistant=per_assistant,
        per_member=per_member,
        per_day=per_day,
    )


def usage_chart(usage: Usage, *, chart_id: str = "usage-chart") -> charts.BarChart:
    """Tokens per day, one bar a day."""
    columns = [
        charts.Column(
            label=date_format(day, "j M"),
            title=ngettext("%(day)s (%(runs)s run)", "%(day)s (%(runs)s runs)", row.runs)
            % {"day": row.label, "runs": charts.format_count(row.runs)},
            values={"": row.tokens},
        )
        for day, row in usage.per_day
    ]
    return charts.bar_chart(
        chart_id=chart_id,
        columns=columns,
        title=_("Tokens per day"),
        description=_(
            "Tokens used by the runs started in Tablero from %(since)s to %(until)s: "
            "%(tokens)s in %(runs)s runs. The table below gives every day."
        )
        % {
            "since": date_format(usage.since, "DATE_FORMAT"),
            "until": date_format(usage.until, "DATE_FORMAT"),
            "tokens": charts.format_count(usage.totals.tokens),
            "runs": charts.format_count(usage.totals.runs),
        },
        y_axis_label=_("Tokens"),
        format_value=lambda value: _("%(count)s tokens") % {"count": charts.format_count(value)},
        format_tick=charts.format_count,
        integer=True,
    )
