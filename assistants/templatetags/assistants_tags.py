"""Template tags for runs.

{% load assistants_tags %}
{% run_badge run %}        {# the status as a coloured badge #}
{% run_outcome run %}      {# why the run failed, expired, stopped or was cancelled #}
{{ run.output_text|markdown }}  {# the model's answer, Markdown rendered safely #}
"""

from typing import Any

from django import template
from django.utils.html import format_html

from assistants.explanations import run_explanation
from assistants.models import STATUS_SEVERITY, Assistant, Run
from connections.templatetags.connections_tags import ask_admins
from lib.severity import Severity

register = template.Library()


# The badges are on every row of the lists: formatted strings, not templates of their own.
@register.simple_tag
def run_badge(run: Run) -> str:
    status = run.shown_status
    severity = STATUS_SEVERITY.get(status, Severity.MUTED)  # Run.status_severity, computed once
    return format_html('<span class="badge badge-{}">{}</span>', severity, status.label)


@register.simple_tag
def sync_badge(assistant: Assistant) -> str:
    return format_html(
        '<span class="badge badge-{}">{}</span>',
        assistant.sync_severity,
        assistant.get_sync_state_display(),
    )


@register.inclusion_tag("connections/partials/error_explanation.html", takes_context=True)
def run_outcome(context, run: Run) -> dict[str, Any]:
    """The catalogue's explanation when the provider could not be asked (provider details for
    admins only, as everywhere), else this app's explanation of the run's own outcome with the
    provider's code and message (they are about the run, not the account)."""
    explanation = run_explanation(run)
    if explanation is None:
        return {"explanation": None}
    if run.last_error_kind:
        access = getattr(context.get("request"), "team_access", None)
        admin = access is not None and access.is_admin
        details = {"code": run.last_error_code, "message": run.last_error_message} if admin else {}
    else:
        details = {"code": run.last_error_code, "message": run.last_error_message}
    return {
        "explanation": explanation,
        "details": details,
        **ask_admins(context, explanation.kind),
    }


@register.filter(is_safe=True)
def markdown(text: str) -> str:
    """The model's answer as safe HTML (assistants.markdown: no HTML from the model, links to
    http, https and mailto only)."""
    # Imported on first use: Django loads every tag library on the first page it renders, and
    # only run pages show an answer; markdown-it stays out of the other workers' memory.
    from assistants.markdown import render_markdown

    return render_markdown(text or "")
