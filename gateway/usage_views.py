"""Gateway usage pages (who used what, with money where the team set prices) and the team's
price table.

A member sees their own calls; an admin or the owner everyone's. Prices are kept by admins.
"""

import datetime
import itertools
from collections.abc import Iterator
from functools import partial
from typing import Any
from uuid import UUID

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.http import require_http_methods, require_safe

from accounts.access import TeamAccess, get_team_for_user
from accounts.models import Role
from gateway import budgets, price_services, prices, usage
from gateway.models import ModelPrice
from gateway.price_forms import ModelPriceForm
from lib.csvexport import csv_response
from lib.forms import posted
from lib.pagination import Counted, paginate

USAGE_PAGE_SIZE = 25


class UsageFilterForm(forms.Form):
    """The period (and range) a usage page covers, from its URL parameters."""

    by = forms.ChoiceField(
        label=gettext_lazy("Group by"), choices=list(usage.GROUP_TITLES.items()), required=False
    )
    period = forms.ChoiceField(
        label=gettext_lazy("Period"), choices=list(usage.PERIODS.items()), required=False
    )
    since = forms.DateField(
        label=gettext_lazy("From"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )
    until = forms.DateField(
        label=gettext_lazy("To"), required=False, widget=forms.DateInput(attrs={"type": "date"})
    )

    def __init__(self, *args: Any, today: datetime.date, default_group: str, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.today = today
        self.default_group = default_group

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        since, until = cleaned.get("since"), cleaned.get("until")
        period = cleaned.get("period") or ("custom" if since or until else "this_month")
        cleaned["period"] = period
        if period == "custom":
            if not since:
                self.add_error("since", _("Give the first day of the range."))
            if not until:
                self.add_error("until", _("Give the last day of the range."))
            if since and until:
                if since > until:
                    self.add_error("until", _("The end date is before the start date."))
                elif (until - since).days + 1 > usage.MAX_RANGE_DAYS:
                    self.add_error(
                        "until",
                        _("Choose a range of at most %(days)s days.")
                        % {"days": usage.MAX_RANGE_DAYS},
                    )
        return cleaned

    def choice(self) -> tuple[str, str, datetime.date, datetime.date]:
        """(group, period, first day, last day); this month when the form is not valid."""
        data = self.cleaned_data if self.is_bound and self.is_valid() else {}
        group = data.get("by") or self.default_group
        period = data.get("period") or "this_month"
        if period == "custom":
            return group, period, data["since"], data["until"]
        since, until = usage.period_range(period, today=self.today)
        return group, period, since, until


def _filter_form(request: HttpRequest, access: TeamAccess) -> UsageFilterForm:
    return UsageFilterForm(
        request.GET or None,
        today=timezone.localdate(),
        default_group="member" if access.is_admin else "model",
    )


# The groups whose rows are spenders with limits of their own: their budgets show beside them.
BUDGET_GROUPS = ("member", "token")


def _attach_budgets(
    rows: list[usage.UsageRow], *, group: str, access: TeamAccess, this_month: bool = False
) -> bool:
    """Give each row of a member or token its monthly budget (`row.budget`) when one is set.
    One query; with `this_month` (the page shows the use against the budget) two more: the
    use is then the budget month's (the calendar month in UTC, as enforced), which near the
    month's edge differs from the period's days in the site's time zone. Whether any row has
    a budget."""
    if group not in BUDGET_GROUPS:
        return False
    keys = [row.key for row in rows if row.key is not None]
    if group == "member":
        limits = budgets.member_limits(team=access.team, user_ids=keys)
    else:
        limits = budgets.token_limits(team=access.team, token_ids=keys)
    budgeted = [
        key
        for key, limit in limits.items()
        if limit.monthly_token_budget or limit.monthly_money_budget
    ]
    month = (
        budgets.month_use(team=access.team, group=group, keys=budgeted)
        if this_month and budgeted
        else {}
    )
    uses = budgets.budget_use(limits, month, budgeted)
    for row in rows:
        row.budget = uses.get(row.key)
    return bool(uses)


def _scope(request: HttpRequest, access: TeamAccess) -> int | None:
    """Whose calls the visitor may see: everyone's (None) for an admin, else their own."""
    return None if access.is_admin else request.user.pk


@login_required
@require_safe
def usage_page(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id)
    form = _filter_form(request, access)
    group, period, since, until = form.choice()
    user_id = _scope(request, access)
    report = usage.usage_report(
        team=access.team, group=group, since=since, until=until, user_id=user_id
    )
    # The groups were counted for the chart: the page is sliced without counting them again.
    grouped = Counted(report.grouped, report.count)
    pages = paginate(request, grouped, default_size=USAGE_PAGE_SIZE)
    page = pages.page
    page.object_list = usage.usage_rows(report, page.object_list)
    usage.usage_latency_fill(
        page.object_list, team=access.team, group=group, since=since, until=until, user_id=user_id
    )
    with_budgets = _attach_budgets(
        page.object_list, group=group, access=access, this_month=period == "this_month"
    )
    totals_latency = usage.usage_totals_latency(
        team=access.team, since=since, until=until, user_id=user_id
    )
    query = request.GET.copy()
    query.pop("page", None)
    tabs = []
    for key in usage.GROUPS:
        tab_query = query.copy()
        tab_query["by"] = key
        tabs.append({"key": key, "label": usage.GROUP_TITLES[key], "query": tab_query.urlencode()})
    return render(
        request,
        "gateway/usage/usage.html",
        {
            "form": form,
            "group": group,
            "group_label": usage.GROUPS[group],
            "group_title": usage.GROUP_TITLES[group],
            "period": period,
            "report": report,
            "totals_latency": totals_latency,
            "latency_sample": usage.LATENCY_SAMPLE,
            "page_obj": page,
            "pages": pages,
            "chart": usage.usage_chart(report),
            "tabs": tabs,
            "export_query": query.urlencode(),
            "own_only": user_id is not None,
            "can_edit_prices": access.is_admin,
            "with_budgets": with_budgets,
        },
    )


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:.1f}"


def _usage_rows(rows: Iterator[list[usage.UsageRow]], group: str) -> Iterator[list[object]]:
    by_model = group == "member_model"
    with_budgets = group in BUDGET_GROUPS
    yield [
        str(usage.GROUPS[group]),
        _("Detail"),
        *([_("Model")] if by_model else []),
        _("Requests"),
        _("Errors"),
        _("Input tokens"),
        _("Cached input tokens"),
        _("Output tokens"),
        _("Cost"),
        _("Currency"),
        _("Tokens without a price"),
        _("Latency p50 (ms)"),
        _("Latency p95 (ms)"),
        _("Latency p99 (ms)"),
        *(
            [_("Monthly budget in tokens"), _("Monthly budget in money"), _("Budget currency")]
            if with_budgets
            else []
        ),
    ]
    for row in itertools.chain.from_iterable(rows):
        amount, currency = row.money.csv()
        latency = row.latency or usage.Latency()
        label = row.key.isoformat() if group == "day" else row.label
        budget = getattr(row, "budget", None)
        yield [
            label,
            row.detail,
            *([row.model] if by_model else []),
            row.requests,
            row.errors,
            row.input,
            row.cached,
            row.output,
            amount,
            currency,
            row.money.unpriced_tokens,
            *(_number(value) for value in latency.as_list()),
            *(
                [
                    budget.token_budget or "" if budget else "",
                    budget.money_budget or "" if budget else "",
                    budget.currency if budget else "",
                ]
                if with_budgets
                else []
            ),
        ]


@login_required
@require_safe
def usage_export(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id)
    form = _filter_form(request, access)
    if form.is_bound and not form.is_valid():
        return HttpResponseBadRequest(
            _("The filters are not valid. Go back to the usage page and correct them."),
            content_type="text/plain; charset=utf-8",
        )
    group, _period, since, until = form.choice()
    user_id = _scope(request, access)
    report = usage.usage_report(
        team=access.team, group=group, since=since, until=until, user_id=user_id, summary=False
    )

    def batches() -> Iterator[list[usage.UsageRow]]:
        # Read as the download streams: a batch of rows at a time, never all of them.
        for batch in usage.usage_row_batches(report):
            usage.usage_latency_fill(
                batch, team=access.team, group=group, since=since, until=until, user_id=user_id
            )
            _attach_budgets(batch, group=group, access=access)
            yield batch

    filename = f"tablero-gateway-usage-{group}-{since:%Y-%m-%d}-{until:%Y-%m-%d}.csv"
    return csv_response(_usage_rows(batches(), group), filename=filename)


# --- prices -------------------------------------------------------------------------------------


@login_required
@require_safe
def price_list(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    listing = prices.model_price_list(team=access.team)
    pages = paginate(request, listing, default_size=USAGE_PAGE_SIZE)
    return render(request, "gateway/prices/list.html", {"page_obj": pages.page, "pages": pages})


def _save_price(request: HttpRequest, form: ModelPriceForm, save: Any) -> bool:
    try:
        save(actor=request.user, **form.cleaned_data)
    except ValidationError as invalid:
        form.add_error(None, invalid.messages)
        return False
    return True


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def price_create(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    form = ModelPriceForm(
        posted(request),
        initial={"effective_from": timezone.localdate(), "model": request.GET.get("model", "")},
    )
    create = partial(price_services.model_price_create, team=access.team)
    if form.is_bound and form.is_valid() and _save_price(request, form, create):
        messages.success(request, _("Price added."))
        return redirect("gateway_usage:prices", team_id=access.team.pk)
    return render(request, "gateway/prices/form.html", {"form": form, "price": None})


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def price_edit(request: HttpRequest, team_id: UUID, price_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    price = get_object_or_404(ModelPrice, pk=price_id, team=access.team)
    form = ModelPriceForm(posted(request), initial=ModelPriceForm.initial_from(price))
    update = partial(price_services.model_price_update, price=price)
    if form.is_bound and form.is_valid() and _save_price(request, form, update):
        messages.success(request, _("Price updated."))
        return redirect("gateway_usage:prices", team_id=access.team.pk)
    return render(request, "gateway/prices/form.html", {"form": form, "price": price})


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def price_delete(request: HttpRequest, team_id: UUID, price_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    price = get_object_or_404(ModelPrice, pk=price_id, team=access.team)
    if request.method == "POST":
        price_services.model_price_delete(price=price, actor=request.user)
        messages.success(request, _("Price removed."))
        return redirect("gateway_usage:prices", team_id=access.team.pk)
    return render(request, "gateway/prices/delete.html", {"price": price})
