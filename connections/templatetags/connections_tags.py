"""Template tags for provider errors, usable by every app.

    {% load connections_tags %}
    {% explain_error error %}                 {# ProviderError, ConnectionErrorEvent or kind #}
    {% explain_error error details=False %}   {# hide the provider's code/status/request id #}

By default the provider's details (code, status, request ID, message) are shown only when the
access helper found the viewer to be an admin of the team (`request.team_access`).
"""

from typing import Any

from django import template
from django.utils.html import format_html

from connections.explanations import explain, needs_admin
from provider.errors import ErrorKind, ProviderError

register = template.Library()


def _details(error: Any) -> dict[str, Any]:
    if isinstance(error, ProviderError):
        return {
            "code": error.code or "",
            "status": error.status,
            "request_id": error.request_id or "",
            "message": error.message,
        }
    if hasattr(error, "kind") and hasattr(error, "request_id"):  # ConnectionErrorEvent
        return {
            "code": error.code,
            "status": error.status,
            "request_id": error.request_id,
            "message": error.message,
        }
    return {}


def _kind(error: Any) -> str:
    if isinstance(error, (str, ErrorKind)):
        return str(error)
    return str(error.kind)


def ask_admins(context, kind: str) -> dict[str, Any]:
    """Whether the reader cannot fix an error of this kind (a viewer or member facing a key,
    credit or URL problem) and so is told whom to ask: the team's admins, by name."""
    access = getattr(context.get("request"), "team_access", None)
    if access is None or access.is_admin or not needs_admin(kind):
        return {"ask_admins": False}
    return {"ask_admins": True, "admins": context.get("team_admins") or []}


@register.inclusion_tag("connections/partials/error_explanation.html", takes_context=True)
def explain_error(context, error, details: bool | None = None) -> dict[str, Any]:
    if not error:
        return {"explanation": None}
    if details is None:
        access = getattr(context.get("request"), "team_access", None)
        details = bool(access is not None and access.is_admin)
    kind = _kind(error)
    try:
        explanation = explain(kind, retry_after=getattr(error, "retry_after", None))
    except ValueError:
        return {"explanation": None}
    return {
        "explanation": explanation,
        "details": _details(error) if details else {},
        **ask_admins(context, kind),
    }


@register.simple_tag
def error_title(kind: str) -> str:
    """The catalogue title for an error kind ("" for none or an unknown kind)."""
    try:
        return explain(kind).title if kind else ""
    except ValueError:
        return ""


@register.simple_tag
def health_badge(connection) -> str:
    # On every row of the connections list: a formatted string, not a template of its own.
    return format_html(
        '<span class="badge badge-{}">{}</span>',
        connection.health_severity,
        connection.get_health_display(),
    )
