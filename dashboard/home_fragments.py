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
"""

import time
from collections.abc import Callable
from typing import Any

from django.http import HttpRequest
from django.middleware.csrf import get_token
from django.template.loader import render_to_string
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import get_language

from accounts.access import TeamAccess
from accounts.selectors import team_admin_names
from dashboard.home_cache import TIMEOUTS, Part, values_get

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


def home_sections(
    *, request: HttpRequest, access: TeamAccess, context: Callable[[], dict[str, Any]]
) -> dict[str, SafeString]:
    """The sections' HTML for this reader; `context()` gives what they render from (the
    overview), asked for only when a section must be rendered."""
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
    sections = {}
    for name, value in html.items():
        if _CSRF_SLOT in value:
            token = format_html(
                '<input type="hidden" name="csrfmiddlewaretoken" value="{}">', get_token(request)
            )
            value = value.replace(_CSRF_SLOT, token)
        # Rendered by the template engine (escaped), then only the token put in.
        sections[name] = mark_safe(value)  # noqa: S308
    return sections
