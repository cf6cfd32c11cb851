"""The words of the gateway's alerts (a budget nearly or wholly used, a burst of errors), in the
active language; `dashboard.alerts` sends them, `dashboard.gateway_alerts` decides when."""

from decimal import Decimal
from typing import Any

from django.utils.translation import gettext as _

from accounts.models import Team
from connections import charts


def _amount(facts: dict[str, Any], key: str) -> str:
    if facts["measure"] == "money":
        return charts.format_amount(Decimal(facts[key]), facts["currency"])
    return _("%(count)s tokens") % {"count": charts.format_count(int(facts[key]))}


def _whose(facts: dict[str, Any]) -> str:
    if facts["target"] == "token":
        if facts.get("owner"):
            return _("The token “%(name)s” (%(prefix)s) of %(owner)s") % facts
        return _("The service token “%(name)s” (%(prefix)s)") % facts
    return _("%(name)s, with all their tokens,") % facts


def budget_words(facts: dict[str, Any], team: Team) -> tuple[str, list[str]]:
    """(subject, lines) of a budget alert."""
    values = {
        "whose": _whose(facts),
        "team": team.name,
        "used": _amount(facts, "used"),
        "budget": _amount(facts, "budget"),
        "percent": facts["percent"],
        "month": facts["month"],
        "name": facts["name"],
    }
    token = facts["target"] == "token"
    whole = facts["threshold"] >= 100
    if whole and token:
        subject = _("The token “%(name)s” used its whole monthly budget") % values
    elif whole:
        subject = _("%(name)s used their whole monthly budget") % values
    elif token:
        subject = _("The token “%(name)s” used %(percent)s %% of its monthly budget") % values
    else:
        subject = _("%(name)s used %(percent)s %% of their monthly budget") % values
    lines = [
        _(
            "%(whose)s in the team %(team)s has used %(used)s of a monthly budget of "
            "%(budget)s in %(month)s (UTC): %(percent)s %%."
        )
        % values,
        "",
        _(
            "Further calls are refused until the month ends, unless an admin raises the "
            "budget on the usage limits page."
        )
        if whole
        else _("When it is all used, further calls are refused until the month ends."),
    ]
    return subject, lines


def burst_words(facts: dict[str, Any], team: Team) -> tuple[str, list[str]]:
    """(subject, lines) of an alert on a burst of errors."""
    values = {
        "whose": _whose({**facts, "target": "token"}),
        "team": team.name,
        "count": facts["errors"],
        "minutes": facts["minutes"],
        "name": facts["name"],
    }
    subject = _("Many errors on the token “%(name)s”") % values
    statuses = ", ".join(
        _("%(status)s (%(count)s)") % {"status": status, "count": count}
        for status, count in facts.get("statuses", [])
    )
    lines = [
        _(
            "%(whose)s in the team %(team)s got %(count)s errors in the last %(minutes)s "
            "minutes through the gateway."
        )
        % values,
    ]
    if statuses:
        lines.append(_("Answers: %(statuses)s.") % {"statuses": statuses})
    lines += [
        "",
        _(
            "The gateway usage page shows its calls. You are told once per burst: not again "
            "until its errors stop for a while."
        ),
    ]
    return subject, lines
