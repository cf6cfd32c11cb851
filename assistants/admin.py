"""Django admin for assistants and runs: one write path, the services'.

An assistant added or changed here goes through `assistant_create` / `assistant_update` (the
team check, the audit log, the push to the provider), and a delete through `assistant_delete`
(the remote copy first). Its team and connection are chosen when it is added and never changed
here (the services cannot move an assistant either). Runs are records of what the provider did:
shown, never edited; a run is started from its assistant's page.
"""

from typing import Any

from django.contrib import admin, messages
from django.db import models
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext as _

from assistants import services
from assistants.forms import CheckedJSONField
from assistants.models import Assistant, Run


def _assistant_data(obj: Assistant) -> dict[str, Any]:
    return {field: getattr(obj, field) for field in services.ASSISTANT_FIELDS}


@admin.register(Assistant)
class AssistantAdmin(admin.ModelAdmin):
    list_display = ["name", "team", "connection", "model", "sync_state", "remote_id", "created_at"]
    list_filter = ["sync_state"]
    search_fields = ["name", "remote_id", "model"]
    raw_id_fields = ["team", "connection", "created_by"]
    list_select_related = ["team", "connection"]

    def get_queryset(self, request: HttpRequest):
        return super().get_queryset(request).defer("connection__models_cache")

    readonly_fields = [
        "remote_id",
        "sync_state",
        "last_error_kind",
        "last_error",
        "last_synced_at",
        "created_by",
        "created_at",
    ]
    # Tools and metadata get the app form's checks (depth, NaN, NUL, lone surrogates).
    formfield_overrides = {models.JSONField: {"form_class": CheckedJSONField}}

    def get_readonly_fields(self, request: HttpRequest, obj: Assistant | None = None):
        if obj is None:
            return self.readonly_fields
        return [*self.readonly_fields, "team", "connection"]

    def save_model(self, request: HttpRequest, obj: Assistant, form, change: bool) -> None:
        if change:
            current = Assistant.objects.select_related("team", "connection").get(pk=obj.pk)
            services.assistant_update(
                assistant=current, user=request.user, data=_assistant_data(obj)
            )
        else:
            current = services.assistant_create(
                team=obj.team,
                user=request.user,
                connection=obj.connection,
                data=_assistant_data(obj),
            ).value
        obj.pk = current.pk
        obj._state.adding = False
        obj.refresh_from_db()
        if obj.sync_state != "synced" and obj.last_error:
            self.message_user(
                request,
                _("Saved in Tablero, but not on the provider: %(problem)s")
                % {"problem": obj.last_error},
                messages.WARNING,
            )

    def delete_model(self, request: HttpRequest, obj: Assistant) -> None:
        if services.assistant_delete(assistant=obj, user=request.user).value is not None:
            self.message_user(
                request,
                _("“%(name)s” could not be deleted on the provider, so it was kept.")
                % {"name": obj.name},
                messages.ERROR,
            )

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Assistant]) -> None:
        for assistant in queryset.select_related("team", "connection"):
            self.delete_model(request, assistant)


@admin.register(Run)
class RunAdmin(admin.ModelAdmin):
    list_display = [
        "created_at",
        "team",
        "assistant_name",
        "turn",
        "backend",
        "status",
        "total_tokens",
    ]
    list_filter = ["status", "backend"]
    search_fields = ["thread_id", "remote_run_id", "response_id", "assistant_name"]
    raw_id_fields = ["team", "assistant", "connection", "started_by"]
    list_select_related = ["team"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Run | None = None) -> bool:
        return False
