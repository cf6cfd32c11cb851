"""Django admin for connections: masked keys only, new keys write-only, every change audited;
and the background tasks, waiting or failed."""

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.decorators import method_decorator
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from django.views.decorators.debug import sensitive_post_parameters, sensitive_variables

from accounts.models import AuditAction
from accounts.services import audit_log
from connections import selectors, services
from connections.explanations import explain
from connections.forms import HeaderIdsMixin, clean_connection_name, clean_key, clean_url
from connections.models import Connection, ConnectionErrorEvent, TaskFailure
from lib.taskqueue import queued_tasks


class ConnectionAdminForm(HeaderIdsMixin, forms.ModelForm):
    """No encrypted field is ever in the form; new keys go in write-only fields."""

    new_api_key = forms.CharField(
        label=_("New API key"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("Leave empty to keep the current key. Stored encrypted, never shown."),
    )
    new_admin_key = forms.CharField(
        label=_("New admin key"),
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"}),
        help_text=_("For reading costs (sk-admin-…). Leave empty to keep the current one."),
    )

    class Meta:
        model = Connection
        fields = [
            "team",
            "name",
            "provider",
            "base_url",
            "organization_id",
            "project_id",
            "api_version",
            "run_api",
        ]

    def clean_name(self) -> str:
        """The name is free in the team, whatever its case. On a change the team is read-only,
        so not in the form: Django would skip the (team, name) constraint; checked here."""
        name = self.cleaned_data["name"]
        team = self.cleaned_data.get("team") if self.instance._state.adding else self.instance.team
        if team is None:  # the team field has its own error
            return name.strip()
        return clean_connection_name(name, team=team, instance=self.instance)

    def clean_new_api_key(self) -> str:
        return clean_key(self.cleaned_data["new_api_key"])

    def clean_new_admin_key(self) -> str:
        return clean_key(self.cleaned_data["new_admin_key"])

    def clean_base_url(self) -> str:
        if "base_url" not in self.changed_data:
            return self.cleaned_data["base_url"]
        return clean_url(self.cleaned_data["base_url"])

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("new_api_key"):
            return cleaned
        if self.instance._state.adding:
            self.add_error("new_api_key", _("A new connection needs an API key."))
        elif "base_url" in self.changed_data:
            self.add_error(
                "new_api_key", _("Enter the key again to change the base URL: it goes with it.")
            )
        return cleaned

    @sensitive_variables()
    def save(self, commit: bool = True) -> Connection:
        connection = super().save(commit=False)
        if self.cleaned_data.get("new_api_key"):
            connection.set_api_key(self.cleaned_data["new_api_key"])
            if not self.instance._state.adding:
                # What Tablero knew was about the old key: "Test selected connections" learns
                # the new one's, as the app's "Replace key" does by itself.
                services.forget_key_state(connection, url_changed="base_url" in self.changed_data)
        if self.cleaned_data.get("new_admin_key"):
            connection.set_admin_key(self.cleaned_data["new_admin_key"])
        elif "base_url" in self.changed_data:
            # An admin key entered for the old server must not follow the URL to a new one.
            connection.set_admin_key("")
        if commit:
            connection.save()
        return connection


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionAdminForm
    list_display = ["name", "team", "provider", "health", "masked_key", "last_checked_at"]
    list_filter = ["team", "health", "provider"]
    search_fields = ["name", "team__name", "organization_id", "project_id"]
    list_select_related = ["team"]

    def get_queryset(self, request: HttpRequest):
        # The cached model list is read only when a form shows it (fetched then).
        return super().get_queryset(request).defer("models_cache")

    readonly_fields = [
        "masked_key",
        "masked_admin_key",
        "health",
        "last_checked_at",
        "last_error",
        "detected_run_api",
        "run_api_detection",
        "created_by",
        "created_at",
        "updated_at",
        "models_cached_at",
    ]
    fieldsets = [
        (
            None,
            {
                "fields": [
                    "team",
                    "name",
                    "provider",
                    "base_url",
                    "organization_id",
                    "project_id",
                    "api_version",
                    "run_api",
                    "detected_run_api",
                    "run_api_detection",
                ]
            },
        ),
        (_("Keys"), {"fields": ["masked_key", "new_api_key", "masked_admin_key", "new_admin_key"]}),
        (
            _("Status"),
            {
                "fields": [
                    "health",
                    "last_checked_at",
                    "last_error",
                    "models_cached_at",
                    "created_by",
                    "created_at",
                    "updated_at",
                ]
            },
        ),
    ]
    actions = ["test_connections"]

    def get_readonly_fields(self, request: HttpRequest, obj: Connection | None = None):
        """The team is chosen when a connection is added, never changed: the key is encrypted
        for its row and the assistants belong to the team, neither may move to another."""
        if obj is None:
            return self.readonly_fields
        return [*self.readonly_fields, "team"]

    # Django's admin does not hide POST data from error reports; the new keys must not show.
    @method_decorator(sensitive_post_parameters("new_api_key", "new_admin_key"))
    def changeform_view(self, request: HttpRequest, *args, **kwargs):
        return super().changeform_view(request, *args, **kwargs)

    @admin.display(description=_("API key"))
    def masked_key(self, connection: Connection) -> str:
        return connection.masked_key or "—"

    @admin.display(description=_("Admin key"))
    def masked_admin_key(self, connection: Connection) -> str:
        return connection.masked_admin_key or "—"

    @admin.display(description=_("run API detection"))
    def run_api_detection(self, connection: Connection) -> str:
        if not connection.run_api_reason:
            return "—"
        return connection.run_api_explanation

    def save_model(self, request: HttpRequest, obj: Connection, form, change: bool) -> None:
        if not change:
            obj.created_by = request.user
        super().save_model(request, obj, form, change)
        data = {
            "name": obj.name,
            "provider": obj.provider,
            "api_key_last4": obj.api_key_last4,
            "changed": sorted(form.changed_data),
            "via": "admin",
        }
        audit_log(
            team=obj.team,
            actor=request.user,
            action=AuditAction.CONNECTION_UPDATE if change else AuditAction.CONNECTION_CREATE,
            target=obj,
            data=data,
        )

    def delete_model(self, request: HttpRequest, obj: Connection) -> None:
        services.connection_delete(connection=obj, user=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        for connection in queryset.select_related("team"):
            services.connection_delete(connection=connection, user=request.user)

    @admin.action(description=_("Test selected connections"))
    def test_connections(self, request: HttpRequest, queryset: QuerySet[Connection]) -> None:
        working = 0
        for connection in queryset.select_related("team"):
            try:
                error = services.connection_test(connection=connection, user=request.user).error
            except services.ConnectionChanged:
                self.message_user(
                    request,
                    _("%(name)s: %(problem)s")
                    % {
                        "name": connection.name,
                        "problem": _(
                            "The key was replaced (or the connection removed) while it was "
                            "being checked; the result was not kept."
                        ),
                    },
                    messages.WARNING,
                )
                continue
            if error is None:
                working += 1
            else:
                self.message_user(
                    request,
                    _("%(name)s: %(problem)s")
                    % {"name": connection.name, "problem": explain(error.kind).title},
                    messages.ERROR,
                )
        if working:
            self.message_user(
                request,
                ngettext("%(count)d connection works.", "%(count)d connections work.", working)
                % {"count": working},
                messages.SUCCESS,
            )


@admin.register(ConnectionErrorEvent)
class ConnectionErrorEventAdmin(admin.ModelAdmin):
    """The error history, with the repeated errors of what the list shows grouped above it
    (count, first and last seen, what Tablero was doing in words)."""

    change_list_template = "admin/connections/connectionerrorevent/change_list.html"
    list_display = ["created_at", "connection", "operation", "kind", "status", "code"]
    list_filter = ["kind", "operation"]
    search_fields = ["connection__name", "request_id", "code"]
    list_select_related = ["connection"]
    GROUPS_SHOWN = 20

    def changelist_view(self, request: HttpRequest, extra_context=None):
        response = super().changelist_view(request, extra_context=extra_context)
        context = getattr(response, "context_data", None)
        if context and "cl" in context:
            rows = selectors.error_groups_query(context["cl"].queryset)[: self.GROUPS_SHOWN]
            context["error_groups"] = selectors.error_groups(rows)
        return response

    def get_queryset(self, request: HttpRequest):
        # The connection's name is shown; its cached model list is not (and is large).
        return super().get_queryset(request).defer("connection__models_cache")

    readonly_fields = [
        "connection",
        "kind",
        "code",
        "status",
        "request_id",
        "message",
        "operation",
        "user",
        "created_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(TaskFailure)
class TaskFailureAdmin(admin.ModelAdmin):
    """Background tasks: those waiting in the queue (read from Huey's storage, above the list)
    and those that failed (the list). Read-only: nothing here runs or removes a task."""

    change_list_template = "admin/connections/taskfailure/change_list.html"
    list_display = ["created_at", "task_name", "signal", "error_class", "arguments"]
    list_filter = ["signal", "task_name"]
    search_fields = ["task_name", "task_id", "error_class"]
    readonly_fields = [
        "task_name",
        "task_id",
        "arguments",
        "signal",
        "error_class",
        "message",
        "retries_left",
        "created_at",
    ]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context=None):
        try:
            pending, scheduled = queued_tasks()
            reachable = True
        except Exception:
            pending, scheduled, reachable = [], [], False
        context = {
            "pending_tasks": pending,
            "scheduled_tasks": scheduled,
            "queue_reachable": reachable,
            **(extra_context or {}),
        }
        return super().changelist_view(request, extra_context=context)
