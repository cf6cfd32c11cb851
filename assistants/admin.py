from django.contrib import admin
from django.db import models

from assistants.forms import CheckedJSONField
from assistants.models import Assistant, Run


@admin.register(Assistant)
class AssistantAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "connection", "model", "sync_state", "remote_id", "created_at"]
    list_filter = ["sync_state"]
    search_fields = ["name", "remote_id", "model"]
    raw_id_fields = ["team", "connection", "created_by"]
    readonly_fields = ["remote_id", "sync_state", "last_error_kind", "last_error", "last_synced_at"]
    # Tools and metadata get the app form's checks (depth, NaN, NUL, lone surrogates).
    formfield_overrides = {models.JSONField: {"form_class": CheckedJSONField}}


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = ["created_at", "team", "assistant_name", "backend", "status", "total_tokens"]
    list_filter = ["status", "backend"]
    search_fields = ["thread_id", "remote_run_id", "response_id", "assistant_name"]
    raw_id_fields = ["team", "assistant", "connection", "started_by"]
    readonly_fields = [
        "thread_id",
        "remote_run_id",
        "response_id",
        "status",
        "remote_status",
        "last_polled_at",
        "poll_until",
        "completed_at",
    ]
