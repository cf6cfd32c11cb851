"""The team's audit log, as a page and as a CSV download."""

import json
from collections.abc import Iterable, Iterator
from uuid import UUID

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, QueryDict
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_safe

from accounts import selectors, services
from accounts.access import get_team_for_user
from accounts.forms import AuditFilterForm
from accounts.models import AuditEvent, Role
from lib.csvexport import csv_response
from lib.pagination import paginate


@login_required
@require_safe
def audit(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    form = AuditFilterForm(request.GET or None, team=access.team)
    if form.is_bound:
        form.is_valid()
    events = selectors.audit_event_list(team=access.team, **form.filters())
    pages = paginate(request, events)
    page = pages.page
    page.object_list = [_scrubbed(event) for event in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "page_obj": page,
        "pages": pages,
        "export_query": query.urlencode(),
        # Each row links to the log filtered by its member, action and connection: the
        # current filters with that one set, from the first page. Built once a page, not
        # three times a row.
        "filter_links": {name: _filter_link(query, name) for name in FILTER_LINKS},
    }
    return render(request, "accounts/audit.html", context)


FILTER_LINKS = ("actor", "action", "connection")


def _filter_link(query: QueryDict, name: str) -> str:
    """The current filters (without the page) with `name` last, its value to be appended."""
    rest = query.copy()
    rest.pop(name, None)
    others = rest.urlencode()
    return f"?{others}&{name}=" if others else f"?{name}="


def _scrubbed(event: AuditEvent) -> AuditEvent:
    # Events are scrubbed when written; this also covers those an older version wrote.
    event.data = services.audit_data_scrub(event.data)
    return event


def _audit_rows(events: Iterable[AuditEvent]) -> Iterator[list[object]]:
    yield [_("When"), _("Actor"), _("Action"), _("Target type"), _("Target"), _("Details")]
    for event in events:
        yield [
            timezone.localtime(event.created_at).isoformat(),
            event.actor_email,
            event.action,
            event.target_type,
            event.target_repr,
            json.dumps(_scrubbed(event).data, ensure_ascii=False, sort_keys=True),
        ]


@login_required
@require_safe
def audit_export(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    form = AuditFilterForm(request.GET, team=access.team)
    if not form.is_valid():
        return HttpResponseBadRequest(
            _("The filters are not valid. Go back to the audit log and correct them."),
            content_type="text/plain; charset=utf-8",
        )
    events = selectors.audit_event_list(team=access.team, **form.filters())
    rows = _audit_rows(events.iterator(chunk_size=500))
    return csv_response(rows, filename=f"tablero-audit-{timezone.localdate():%Y-%m-%d}.csv")
