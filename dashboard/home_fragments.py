"""The team home's bounded sections, rendered once and kept as HTML (dashboard.home_cache).

Rendering the connections table, the runs in progress, "What went wrong lately" (with an
explanation per error) and the connections "Needs attention" lists is most of what a home page
costs once its parts are cached. Each section's HTML is kept under the generations of the parts
it shows, so a change to them makes it rendered again, and under everything else it depends on:

- the reader's role: admins see "Test again", the spend column and the provider's details,
  which a viewer or member must never get from a cached copy; readers are told whom to ask,
  so their errors section also carries the generation of the team's admins (Part.ADMINS);
- the reader's language;
- the clock, in slices of `FRESH_SECONDS`: the sections say "3 minutes ago" and "resets in
  6 min", which are at most that much older than the page. (A run that becomes overdue with
  time alone leaves the runs in progress within the runs part's lifetime plus this.)

What is kept is the same for every reader of a role and a language: the one thing in it that
is a reader's own, the CSRF token of the "Test again" forms, is rendered as a placeholder and
replaced with the reader's token on each page.

The whole page is kept too, for each reader (`kept_page`): under the generations of every
part, the same 30-second slices, and what the frame shows of the reader (their name, email,
staff flag and teams, as the team switcher has them). A page is never kept while it has a
message to show once, and an admin's is kept apart while background checks have stopped.
"""

import hashlib
import time
from collections.abc import Callable
from typing import Any

from django.contrib.messages import get_messages
from django.http import HttpRequest, HttpResponse
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

from accounts.access import TeamAccess
from accounts.selectors import switcher_memberships, team_admin_names
from dashboard.home_cache import TIMEOUTS, Part, values_get
from lib.taskqueue import heartbeat_known

FRESH_SECONDS = 30

# name: (template, the parts it shows)
SECTIONS: dict[str, tuple[str, tuple[Part, ...]]] = {
    "next_steps": ("dashboard/partials/home_next_steps.html", (Part.CONNECTIONS,)),
    "connections": ("dashboard/partials/home_connections.html", (Part.CONNECTIONS, Part.SPEND)),
    "active_runs": ("dashboard/partials/home_active_runs.html", (Part.RUNS,)),
    "errors": ("dashboard/partials/home_errors.html", (Part.ERRORS, Part.ADMINS)),
}

# What `{% csrf_token %}` renders from the placeholder; a page never holds it otherwise (the
# names and texts of rows are escaped, so no row can spell an <input>).
_CSRF_PLACEHOLDER = "csrf-token-of-the-reader"
_CSRF_SLOT = str(
    format_html('<input type="hidden" name="csrfmiddlewaretoken" value="{}">', _CSRF_PLACEHOLDER)
)


def admin_names(*, team: Any) -> list[str]:
    """Whom a viewer or member is told to ask (accounts.selectors.team_admin_names), kept
    until the team's memberships or their names change."""
    return values_get(
        team.pk,
        {
            "admins": (
                (Part.ADMINS,),
                "",
                lambda: team_admin_names(team=team),
                TIMEOUTS[Part.ADMINS],
            )
        },
    )["admins"]


def _with_token(request: HttpRequest, html: str) -> str:
    """The kept HTML with the reader's own CSRF token in place of the placeholder."""
    if _CSRF_SLOT not in html:
        return html
    token = format_html(
        '<input type="hidden" name="csrfmiddlewaretoken" value="{}">', get_token(request)
    )
    return html.replace(_CSRF_SLOT, token)


def kept_page(
    *, request: HttpRequest, access: TeamAccess, render: Callable[[dict[str, Any]], HttpResponse]
) -> HttpResponse:
    """The team home for this reader, kept as HTML; `render(extra_context)` renders it (with
    `extra_context` added: the placeholder for the CSRF token) when it must be."""
    if len(get_messages(request)):  # shown once: such a page is rendered, and not kept
        response = render({})
        response.content = _with_token(request, response.content.decode())
        return response
    user = request.user
    frame = [(m.team_id, m.team.name, m.role) for m in switcher_memberships(user_id=user.pk)]
    seen = repr((user.get_short_name(), user.email, user.is_staff, frame))
    stopped = access.is_admin and heartbeat_known().stale()
    variant = ":".join(
        [
            str(user.pk),
            access.membership.role,
            get_language(),
            str(int(time.time() // FRESH_SECONDS)),
            hashlib.blake2b(seen.encode(), digest_size=8).hexdigest(),
            "stopped" if stopped else "running",
        ]
    )

    def rendered() -> str:
        return render({"csrf_token": _CSRF_PLACEHOLDER}).content.decode()

    html = values_get(
        access.team.pk, {"page": (tuple(Part), variant, rendered, FRESH_SECONDS * 2)}
    )["page"]
    return HttpResponse(_with_token(request, html))


def home_sections(
    *, request: HttpRequest, access: TeamAccess, context: Callable[[], dict[str, Any]]
) -> dict[str, SafeString]:
    """The sections' HTML for this reader; `context()` gives what they render from (the
    overview), asked for only when a section must be rendered. Their CSRF tokens are left as
    the placeholder: `kept_page` puts the reader's in, in the whole page."""
    role = "admin" if access.is_admin else "reader"
    variant = f"{role}:{get_language()}:{int(time.time() // FRESH_SECONDS)}"

    def render(template: str) -> Callable[[], str]:
        def rendered() -> str:
            # The placeholder, not the reader's token, is what is kept.
            values = {**context(), "csrf_token": _CSRF_PLACEHOLDER}
            return str(render_to_string(template, values, request=request))

        return rendered

    html = values_get(
        access.team.pk,
        {
            name: (parts, variant, render(template), FRESH_SECONDS * 2)
            for name, (template, parts) in SECTIONS.items()
        },
    )
    # Rendered by the template engine (escaped), then only the token put in (by kept_page,
    # when the whole page is kept).
    return {name: mark_safe(value) for name, value in html.items()}  # noqa: S308
