"""The team's Spend page and its CSV (admins and the owner): every connection's costs, as Tablero
last fetched them, grouped by connection, line item or project. The monthly spend threshold
the alerts use is shown here and changed on the alert settings page (one place for it)."""

from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _
from django.views.decorators.http import require_safe

from accounts.access import get_team_for_user
from accounts.models import Role
from connections.charts import format_amount
from connections.costs import costs_chart
from dashboard import spend as spend_selectors
from lib.csvexport import csv_response
from lib.pagination import paginate


@login_required
@require_safe
def spend_page(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    group = spend_selectors.group_from(request.GET.get("group"))
    spend = spend_selectors.spend_get(team=access.team, group=group)
    report = spend.report
    pages = paginate(request, spend.rows())
    context = {
        "spend": spend,
        "group": group,
        "groups": spend_selectors.GROUPS,
        "report": report,
        "group_label": spend_selectors.GROUPS[group],
        "pages": pages,
        "rows": [(line, format_amount(line.amount, line.currency)) for line in pages.page],
        "month": [format_amount(amount, currency) for currency, amount in spend.month.items()],
        "threshold": format_amount(spend.threshold, "usd") if spend.threshold is not None else "",
    }
    if report is not None:
        context.update(
            chart=costs_chart(report, chart_id="spend-chart"),
            total=format_amount(report.total, report.currency),
            other_totals=[
                format_amount(amount, currency)
                for currency, amount in report.totals.items()
                if currency != report.currency
            ],
            group_totals=[
                (value, format_amount(amount, report.currency))
                for value, amount in report.group_totals()
            ],
        )
    return render(request, "dashboard/spend.html", context)


@login_required
@require_safe
def spend_export(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    group = spend_selectors.group_from(request.GET.get("group"))
    spend = spend_selectors.spend_get(team=access.team, group=group)
    item = {
        "connection": [],
        "model": [_("Model")],
        "line_item": [_("Line item")],
        "project": [_("Project")],
    }[group]
    headers = [_("Day"), _("Connection"), *item, _("Amount"), _("Currency")]
    rows = spend_selectors.spend_csv_rows(spend, headers=headers)
    return csv_response(rows, filename=f"tablero-spend-{group}.csv")
