"""Pages for a team's connections and the models they can use.

Everyone in the team sees connections and models; admins add, test, change and remove them;
members may refresh a model list (it costs a provider call). Provider failures are shown with
the error catalogue's explanation, never as a server error. Views that receive a key hide it
from error reports (`sensitive_post_parameters`, `sensitive_variables`).

A GET writes nothing to the database: it shows what Tablero last stored (model list, health,
month spend, costs) or asks the provider live and stores nothing (a model's details). Asking
again and recording the answer is a POST (Refresh, Test), which queues a task
(connections/tasks.py) and answers at once: the page says "checking…" and follows the task
through htmx (it fetches itself again and swaps in its own part), until the task is done;
without JavaScript a reload shows the result.
"""

from datetime import datetime
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.dateparse import parse_datetime
from django.utils.text import Truncator
from django.utils.timesince import timesince
from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts.access import get_team_for_user
from accounts.models import Role
from connections import costs, selectors, services, tasks
from connections.charts import format_amount, headroom
from connections.explanations import problem
from connections.forms import (
    AdminKeyForm,
    BaseUrlChangeForm,
    ConnectionCreateForm,
    ConnectionEditForm,
    ModelSearchForm,
    ReplaceKeyForm,
)
from connections.models import Connection, Health
from lib import panels
from lib.forms import posted
from lib.pagination import paginate
from lib.progress import progress_active
from lib.urls import row_url
from provider.errors import ErrorKind, ProviderError


def _failed(request: HttpRequest, error: ProviderError, text: str) -> None:
    """A message naming the catalogue title (and the wait the provider asked for); `text` has
    a %(problem)s placeholder."""
    messages.error(request, text % {"problem": problem(error)})


@login_required
@require_safe
def connection_list(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id)
    pages = paginate(request, selectors.connection_list(team=access.team))
    detail = row_url("connections:detail", access.team.pk)
    for connection in pages.page:
        # What each row says, made here: {% url %} and {% blocktranslate %} cost more per row
        # than the rest of the row together (the words are the template's own msgids).
        connection.url = detail(connection.pk)
        if connection.last_checked_at:
            since = timesince(connection.last_checked_at)
            connection.checked_ago = _("%(since)s ago") % {"since": since}
        if connection.error_count:
            connection.errors_recorded = ngettext(
                "%(counter)s error recorded", "%(counter)s errors recorded", connection.error_count
            ) % {"counter": connection.error_count}
    return render(
        request,
        "connections/list.html",
        {"connections": pages.page, "pages": pages},
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
@sensitive_post_parameters("api_key", "admin_key")
@sensitive_variables()
def connection_create(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    form = ConnectionCreateForm(posted(request), team=access.team)
    error = None
    if form.is_bound and form.is_valid():
        try:
            outcome = services.connection_create(
                team=access.team, user=request.user, **form.cleaned_data
            )
        except ValidationError as invalid:
            form.add_error(None, invalid.messages)
        else:
            connection, error = outcome.value, outcome.error
            if connection is not None:
                if error is None:
                    messages.success(request, _("Connection added. The key works."))
                else:
                    _failed(
                        request, error, _("Connection saved, but the check failed: %(problem)s.")
                    )
                return redirect(
                    "connections:detail", team_id=access.team.pk, connection_id=connection.pk
                )
    return render(
        request,
        "connections/create.html",
        {"form": form, "error": error},
    )


@login_required
@require_safe
def connection_detail(request: HttpRequest, team_id: UUID, connection_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id)
    connection = selectors.connection_get(team=access.team, pk=connection_id)
    errors = None
    if access.is_admin:
        # Repeated failures grouped (count, first and last seen), a page of groups.
        errors = paginate(
            request,
            selectors.connection_error_groups(connection=connection),
            prefix="errors_",
            default_size=selectors.RECENT_ERRORS,
        )
    return render(
        request,
        "connections/detail.html",
        {
            "connection": connection,
            "errors": selectors.error_groups(errors.page) if errors else [],
            "error_pages": errors,
            "stored_error": selectors.stored_error(connection)
            if connection.last_error_kind
            else None,
            "rate_limit": headroom(connection.rate_limit),
            "rate_limit_at": _captured_at(connection.rate_limit),
            "checking": progress_active(tasks.check_key(connection.pk)),
            # Sections the apps above add (the gateway's traffic), lib.panels.
            "panels": panels.render_all(
                "connection_detail", request, access, connection=connection
            ),
        },
    )


def _captured_at(rate_limit: dict[str, Any]) -> datetime | None:
    """When the rate-limit headers were seen (None when unknown)."""
    value = rate_limit.get("captured_at")
    return parse_datetime(value) if isinstance(value, str) else None


@login_required
@require_POST
def connection_test(request: HttpRequest, team_id: UUID, connection_id: UUID) -> HttpResponse:
    """Queue a check of the key and answer at once; the page says "checking…" until done."""
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    connection = selectors.connection_get(team=access.team, pk=connection_id)
    tasks.connection_check_queue(connection=connection, user=request.user)
    if not progress_active(tasks.check_key(connection.pk)):
        # Done already (a consumer that was quick, or tasks run at once): say how it went.
        try:
            connection.refresh_from_db()
        except connection.DoesNotExist:
            messages.warning(request, _("The connection was removed while it was being checked."))
            return redirect("connections:list", team_id=access.team.pk)
        _check_message(request, connection)
    return redirect("connections:detail", team_id=access.team.pk, connection_id=connection.pk)


def _check_message(request: HttpRequest, connection) -> None:
    if connection.last_error_kind:
        try:
            kind = ErrorKind(connection.last_error_kind)
        except ValueError:  # written by an older version
            kind = ErrorKind.BAD_RESPONSE
        _failed(request, ProviderError(kind), _("The check failed: %(problem)s."))
    elif connection.health == Health.OK:
        messages.success(request, _("The connection works."))


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def connection_edit(request: HttpRequest, team_id: UUID, connection_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    connection = selectors.connection_get(team=access.team, pk=connection_id)
    form = ConnectionEditForm(posted(request), team=access.team, instance=connection)
    if form.is_bound and form.is_valid():
        try:
            services.connection_update(
                connection=connection, user=request.user, **form.cleaned_data
            )
        except ValidationError as invalid:
            form.add_error(None, invalid.messages)
        else:
            messages.success(request, _("Connection updated."))
            return redirect(
                "connections:detail", team_id=access.team.pk, connection_id=connection.pk
            )
    return render(
        request,
        "connections/edit.html",
        {
            "connection": connection,
            "form": form,
            "url_form": BaseUrlChangeForm(instance=connection),
        },
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
@sensitive_post_parameters("api_key", "admin_key")
@sensitive_variables()
def connection_replace_key(
    request: HttpRequest, team_id: UUID, connection_id: UUID
) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    connection = selectors.connection_get(team=access.team, pk=connection_id)
    form = ReplaceKeyForm(posted(request), instance=connection)
    error = None
    if form.is_bound and form.is_valid():
        had_admin_key = connection.has_admin_key
        outcome = services.connection_replace_key(
            connection=connection, user=request.user, **form.cleaned_data
        )
        saved, error = outcome.value, outcome.error
        if saved is not None:
            if error is None:
                messages.success(request, _("Key replaced. The new key works."))
            else:
                _failed(request, error, _("Key replaced, but the check failed: %(problem)s."))
            if had_admin_key and not saved.has_admin_key:
                messages.warning(
                    request,
                    _(
                        "The admin key was entered for the old base URL, so it was removed. "
                        "Add it again to read the costs."
                    ),
                )
            return redirect(
                "connections:detail", team_id=access.team.pk, connection_id=connection.pk
            )
    return render(
        request,
        "connections/replace_key.html",
        {
            "connection": connection,
            "form": form,
            "error": error,
        },
    )


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def connection_delete(request: HttpRequest, team_id: UUID, connection_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    connection = selectors.connection_get(team=access.team, pk=connection_id)
    if request.method == "POST":
        services.connection_delete(connection=connection, user=request.user)
        messages.success(request, _("Connection removed; its key was deleted."))
        return redirect("connections:list", team_id=access.team.pk)
    return render(
        request,
        "connections/delete.html",
        {"connection": connection},
    )


@login_required
@require_safe
def model_list(request: HttpRequest, team_id: UUID, connection_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id)
    connection = selectors.connection_get(team=access.team, pk=connection_id, with_models=True)
    search = ModelSearchForm(request.GET)
    wanted = search.cleaned_data if search.is_valid() else {"q": "", "purpose": ""}
    listing = selectors.model_list(
        connection=connection, query=wanted["q"], purpose=wanted["purpose"]
    )
    return render(
        request,
        "connections/models.html",
        {
            "connection": connection,
            "listing": listing,
            "pages": paginate(request, listing.models),
            "form": ModelSearchForm(initial=wanted),
            "searching": bool(wanted["q"] or wanted["purpose"]),
            "refreshing": progress_active(tasks.models_key(connection.pk)),
        },
    )


@login_required
@require_POST
def models_refresh(request: HttpRequest, team_id: UUID, connection_id: UUID) -> HttpResponse:
    """Queue a fetch of the list and answer at once; the page says "refreshing…" until done,
    then shows the new list, or why it failed with the list kept before."""
    access = get_team_for_user(request, team_id, min_role=Role.MEMBER)
    connection = selectors.connection_get(team=access.team, pk=connection_id)
    tasks.models_refresh_queue(connection=connection, user=request.user)
    if not progress_active(tasks.models_key(connection.pk)):
        # Done already (a consumer that was quick, or tasks run at once): say how it went.
        if not Connection.objects.filter(pk=connection.pk).exists():
            raise Http404
        connection.refresh_from_db()
        if not connection.last_error_kind:
            messages.success(request, _("Model list refreshed."))
    return redirect(
        reverse(
            "connections:models",
            kwargs={"team_id": access.team.pk, "connection_id": connection.pk},
        )
    )


@login_required
@require_safe
def model_detail(
    request: HttpRequest, team_id: UUID, connection_id: UUID, model_id: str
) -> HttpResponse:
    access = get_team_for_user(request, team_id)
    connection = selectors.connection_get(team=access.team, pk=connection_id)
    # What the list Tablero last fetched says: the page never waits on the provider.
    model = selectors.model_cached(connection=connection, model_id=model_id)
    error = None
    if model is None and connection.health != Health.OK and connection.last_error_kind:
        error = selectors.stored_error(connection)  # then only the explanation is shown
    return render(
        request,
        "connections/model_detail.html",
        {
            "connection": connection,
            "model_id": Truncator(model_id).chars(selectors.MODEL_ID_MAX),
            "model": model,
            "error": error,
            "fetched_at": connection.models_cached_at,
        },
    )


# --- costs and the admin key that reads them (admins only) -------------------------------------


def _costs_page(
    request: HttpRequest, access, connection, group: str, result: costs.CostsResult
) -> HttpResponse:
    report = result.report
    context: dict[str, Any] = {
        "connection": connection,
        "group": group,
        "groups": costs.GROUP_CHOICES,
        "result": result,
        "report": report,
        "error": result.error,
        "key_refused": result.error is not None
        and result.error.kind in (ErrorKind.INVALID_KEY, ErrorKind.PERMISSION_DENIED),
        "admin_keys_url": costs.ADMIN_KEYS_URL,
        "usage_url": costs.USAGE_URL,
        "fetching": progress_active(tasks.costs_key(connection.pk)),
    }
    if report is not None:
        month = report.month_totals(report.end)
        context.update(
            chart=costs.costs_chart(report),
            total=format_amount(report.total, report.currency),
            other_totals=[
                format_amount(amount, currency)
                for currency, amount in report.totals.items()
                if currency != report.currency
            ],
            month_total=format_amount(month.get(report.currency, 0), report.currency),
            other_month_totals=[
                format_amount(amount, currency)
                for currency, amount in month.items()
                if currency != report.currency
            ],
            group_totals=[
                (costs.group_label(group, value), format_amount(amount, report.currency))
                for value, amount in report.group_totals()
            ],
            rows=[
                (
                    line.day,
                    costs.group_label(group, line.group),
                    format_amount(line.amount, line.currency),
                )
                for line in report.rows()
            ],
        )
    return render(request, "connections/costs.html", context)


@login_required
@require_safe
def connection_costs(request: HttpRequest, team_id: UUID, connection_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    connection = selectors.connection_get(team=access.team, pk=connection_id)
    group = costs.group_from(request.GET.get("group"))
    result = costs.costs_get(connection=connection, group=group)
    return _costs_page(request, access, connection, group, result)


@login_required
@require_POST
def connection_costs_refresh(
    request: HttpRequest, team_id: UUID, connection_id: UUID
) -> HttpResponse:
    """Queue a fetch of the costs and answer at once; the page says "fetching…" until done,
    then shows the new figures, or why the fetch failed next to the figures kept before."""
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    connection = selectors.connection_get(team=access.team, pk=connection_id)
    group = costs.group_from(request.POST.get("group"))
    target = reverse("connections:costs", args=[access.team.pk, connection.pk])
    if not connection.has_admin_key:
        messages.error(request, _("Add an admin key first: costs can only be read with one."))
        return redirect(f"{target}?group={group}")
    tasks.costs_refresh_queue(connection=connection, group=group, user=request.user)
    # Done already (a consumer that was quick, or tasks run at once): say how it went.
    done = not progress_active(tasks.costs_key(connection.pk))
    if done and costs.costs_get(connection=connection, group=group).error is None:
        messages.success(request, _("Costs refreshed."))
    return redirect(f"{target}?group={group}")


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
@sensitive_post_parameters("admin_key")
@sensitive_variables()
def connection_admin_key(request: HttpRequest, team_id: UUID, connection_id: UUID) -> HttpResponse:
    """Set or replace the admin key. It is write-only: the page shows it masked."""
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    connection = selectors.connection_get(team=access.team, pk=connection_id)
    form = AdminKeyForm(posted(request))
    if form.is_bound and form.is_valid():
        replaced = connection.has_admin_key
        services.connection_set_admin_key(
            connection=connection, user=request.user, admin_key=form.cleaned_data["admin_key"]
        )
        # The costs page shows what was fetched: fetch them with the new key now.
        tasks.costs_refresh_queue(
            connection=connection, group=costs.DEFAULT_GROUP, user=request.user
        )
        messages.success(
            request,
            _("Admin key replaced.") if replaced else _("Admin key saved. Here are the costs."),
        )
        return redirect("connections:costs", team_id=access.team.pk, connection_id=connection.pk)
    return render(
        request,
        "connections/admin_key.html",
        {
            "connection": connection,
            "form": form,
            "admin_keys_url": costs.ADMIN_KEYS_URL,
        },
    )


@login_required
@require_POST
def connection_admin_key_remove(
    request: HttpRequest, team_id: UUID, connection_id: UUID
) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    connection = selectors.connection_get(team=access.team, pk=connection_id)
    if connection.has_admin_key:
        services.connection_set_admin_key(connection=connection, user=request.user, admin_key="")
        messages.success(request, _("Admin key removed; Tablero can no longer read the costs."))
    return redirect("connections:admin_key", team_id=access.team.pk, connection_id=connection.pk)
