"""Django admin for the gateway: tokens by their public prefix (never a digest, never a value)
with a revoke action through the services, and the call records. No token is added or edited
here: a token's value must be shown once to the person it is for, on the API tokens page.
Usage limits are set and removed here through the same services as the pages (audited)."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from gateway import limit_services, services
from gateway.limit_forms import add_service_errors
from gateway.models import ApiToken, GatewayCall, UsageLimit


class _ReadOnly(admin.ModelAdmin):
    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class TokenState(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("usable", _("Usable")), ("revoked", _("Revoked")), ("expired", _("Expired"))]

    def queryset(self, request, queryset):
        now = timezone.now()
        if self.value() == "usable":
            return queryset.usable(now=now)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        if self.value() == "expired":
            return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
        return queryset


@admin.register(ApiToken)
class ApiTokenAdmin(_ReadOnly):
    list_display = [
        "display_prefix",
        "name",
        "team",
        "owner",
        "kind",
        "connection",
        "expires_at",
        "revoked_at",
        "last_used_at",
    ]
    list_filter = [TokenState, "kind", "team"]
    search_fields = ["prefix", "name", "team__name", "owner__email"]
    list_select_related = ["team", "owner", "connection"]
    # Every field but the digest, read-only.
    fields = readonly_fields = [
        "display_prefix",
        "name",
        "team",
        "connection",
        "kind",
        "owner",
        "created_by",
        "scopes",
        "allowed_models",
        "created_at",
        "expires_at",
        "expiry_noted_at",
        "revoked_at",
        "revoked_by",
        "last_used_at",
        "last_used_ip",
    ]
    actions = ["revoke_tokens"]

    @admin.display(description=_("token"), ordering="prefix")
    def display_prefix(self, token: ApiToken) -> str:
        return token.display_prefix

    def get_actions(self, request: HttpRequest):
        # The site-wide "delete selected" would skip the audit: revoking is the way out.
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.action(description=_("Revoke selected tokens"), permissions=["revoke"])
    def revoke_tokens(self, request: HttpRequest, queryset: QuerySet[ApiToken]) -> None:
        revoked = 0
        for token in queryset.order_by("pk"):
            if token.revoked_at is not None:
                continue
            services.token_revoke(token=token, actor=request.user, via="admin", site_admin=True)
            revoked += 1
        self.message_user(
            request,
            ngettext("%(count)d token revoked.", "%(count)d tokens revoked.", revoked)
            % {"count": revoked},
            messages.SUCCESS,
        )

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("gateway.change_apitoken")


@admin.register(GatewayCall)
class GatewayCallAdmin(_ReadOnly):
    list_display = [
        "created_at",
        "team",
        "token",
        "user",
        "method",
        "path",
        "model",
        "status",
        "refused",
        "latency_ms",
    ]
    list_filter = ["family", "refused", "refusal", "streamed", "team"]
    search_fields = ["path", "model", "request_id", "token__prefix"]
    list_select_related = ["team", "token", "user"]
    date_hierarchy = "created_at"
    fields = readonly_fields = [
        "created_at",
        "team",
        "token",
        "user",
        "connection",
        "family",
        "method",
        "path",
        "model",
        "status",
        "refused",
        "refusal",
        "request_id",
        "streamed",
        "latency_ms",
        "first_byte_ms",
        "input_tokens",
        "cached_tokens",
        "output_tokens",
    ]


class UsageLimitAdminForm(forms.ModelForm):
    """The services' rules, so a wrong value re-renders the form instead of failing the save."""

    class Meta:
        model = UsageLimit
        fields = ["team", "target", "token", "user", *limit_services.LIMIT_FIELDS]

    def clean(self):
        cleaned = super().clean()
        values = {name: cleaned.get(name) for name in limit_services.LIMIT_FIELDS}
        try:
            limit_services.limit_clean(values)
            team = cleaned.get("team") or getattr(self.instance, "team", None)
            if team is not None and self.instance._state.adding:
                limit_services.usage_limit_target(
                    team=team, token=cleaned.get("token"), user=cleaned.get("user")
                )
        except ValidationError as invalid:
            add_service_errors(self, invalid)
        return cleaned


@admin.register(UsageLimit)
class UsageLimitAdmin(admin.ModelAdmin):
    """Every write goes through `gateway.limit_services` (the pages' path): audited, checked."""

    form = UsageLimitAdminForm

    list_display = [
        "__str__",
        "team",
        "token",
        "user",
        "requests_per_minute",
        "tokens_per_minute",
        "concurrent_requests",
        "monthly_token_budget",
        "monthly_money_budget",
        "budget_currency",
        "updated_at",
    ]
    list_filter = ["target", "team"]
    list_select_related = ["team", "token", "user"]
    search_fields = ["team__name", "token__prefix", "token__name", "user__email"]
    raw_id_fields = ["team", "token", "user"]
    fields = ["team", "target", "token", "user", *limit_services.LIMIT_FIELDS]
    readonly_fields = ["created_at", "updated_at"]

    def get_readonly_fields(self, request: HttpRequest, obj=None):
        # What a limit applies to is fixed once made: another target is another limit.
        fixed = ["team", "target", "token", "user"] if obj is not None else []
        return [*fixed, *self.readonly_fields]

    def get_actions(self, request: HttpRequest):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)  # would skip the audit
        return actions

    def save_model(self, request: HttpRequest, obj: UsageLimit, form, change: bool) -> None:
        values = {name: getattr(obj, name) for name in limit_services.LIMIT_FIELDS}
        try:
            saved = limit_services.usage_limit_set(
                team=obj.team,
                actor=request.user,
                token=obj.token,
                user=obj.user,
                site_admin=True,
                **values,
            )
        except ValidationError as invalid:
            # The form checked the same rules; a race with a page is the only way here.
            self.message_user(request, "; ".join(invalid.messages), messages.ERROR)
            raise
        obj.pk, obj.created_at, obj.updated_at = saved.pk, saved.created_at, saved.updated_at
        obj._state.adding = False

    def delete_model(self, request: HttpRequest, obj: UsageLimit) -> None:
        limit_services.usage_limit_clear(limit=obj, actor=request.user, site_admin=True)
