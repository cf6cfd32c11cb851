from django.contrib import admin
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from accounts.models import AuditEvent, Invitation, Membership, Team, User
from accounts.services import audit_log

# --- Users -----------------------------------------------------------------------------------


class UserCreationForm(auth_forms.AdminUserCreationForm):
    class Meta:
        model = User
        fields = ("email", "name")

    def clean_email(self) -> str:
        email = self.cleaned_data["email"].strip().lower()
        if User.objects.filter(email__iexact=email).exists():
            raise ValidationError(_("An account with this email address already exists."))
        return email


class UserChangeForm(auth_forms.UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    form = UserChangeForm
    add_form = UserCreationForm
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        (_("Personal info"), {"fields": ("name",)}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (
            None,
            {
                "classes": ("wide",),
                "fields": ("email", "name", "usable_password", "password1", "password2"),
            },
        ),
    )
    list_display = ("email", "name", "is_staff", "last_login")
    list_filter = ("is_staff", "is_superuser", "is_active")
    search_fields = ("email", "name")
    ordering = ("email",)
    readonly_fields = ("last_login", "date_joined")


# --- Teams and memberships (changes here are audited like those made in the app) -------------


def _membership_data(membership: Membership) -> dict:
    return {"email": membership.user.email, "role": membership.role, "via": "admin"}


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ("user",)
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "created_at")
    search_fields = ("name",)
    date_hierarchy = "created_at"
    inlines = (MembershipInline,)

    def save_model(self, request, obj: Team, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            audit_log(
                team=obj,
                actor=request.user,
                action="team.create",
                target=obj,
                data={"via": "admin"},
            )
        elif "name" in form.changed_data:
            audit_log(
                team=obj,
                actor=request.user,
                action="team.rename",
                target=obj,
                data={"from": form.initial.get("name", ""), "to": obj.name, "via": "admin"},
            )

    def delete_model(self, request, obj: Team) -> None:
        _audit_team_delete(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for team in queryset:
            _audit_team_delete(request, team)
        super().delete_queryset(request, queryset)

    def save_formset(self, request, form, formset, change: bool) -> None:
        # Memberships in the inline. Removals are logged first, while they still have their id;
        # the admin wraps all of this in one transaction.
        team = form.instance
        for f in formset.deleted_forms:
            if f.instance.pk is not None:
                _audit_member_remove(request, f.instance)
        changed = [
            f.instance for f in formset.forms if f.instance.pk is not None and f.has_changed()
        ]
        previous = {m.pk: m.role for m in Membership.objects.filter(pk__in=[m.pk for m in changed])}
        super().save_formset(request, form, formset, change)
        for membership in formset.new_objects:
            audit_log(
                team=team,
                actor=request.user,
                action="member.add",
                target=membership,
                data=_membership_data(membership),
            )
        for membership, _fields in formset.changed_objects:
            _audit_role_change(request, membership, previous.get(membership.pk))


def _audit_team_delete(request, team: Team) -> None:
    audit_log(
        team=None,
        actor=request.user,
        action="team.delete",
        target=team,
        data={"name": team.name, "via": "admin"},
    )


def _audit_role_change(request, membership: Membership, old_role: str | None) -> None:
    if old_role is None or old_role == membership.role:
        return
    audit_log(
        team=membership.team,
        actor=request.user,
        action="member.role_change",
        target=membership,
        data={
            "email": membership.user.email,
            "from": old_role,
            "to": membership.role,
            "via": "admin",
        },
    )


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("team", "user", "role", "created_at")
    list_filter = ("role", "team")
    list_select_related = ("team", "user")
    search_fields = ("user__email", "user__name", "team__name")
    autocomplete_fields = ("team", "user")

    def save_model(self, request, obj: Membership, form, change: bool) -> None:
        old_role = form.initial.get("role") if change else None
        super().save_model(request, obj, form, change)
        if not change:
            audit_log(
                team=obj.team,
                actor=request.user,
                action="member.add",
                target=obj,
                data=_membership_data(obj),
            )
        else:
            _audit_role_change(request, obj, old_role)

    def delete_model(self, request, obj: Membership) -> None:
        _audit_member_remove(request, obj)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for membership in queryset.select_related("team", "user"):
            _audit_member_remove(request, membership)
        super().delete_queryset(request, queryset)


def _audit_member_remove(request, membership: Membership) -> None:
    audit_log(
        team=membership.team,
        actor=request.user,
        action="member.remove",
        target=membership,
        data=_membership_data(membership),
    )


# --- Invitations and the audit log -----------------------------------------------------------


@admin.register(Invitation)
class InvitationAdmin(admin.ModelAdmin):
    list_display = ("email", "team", "role", "expires_at", "accepted_at", "revoked_at")
    list_filter = (
        "role",
        "team",
        ("accepted_at", admin.EmptyFieldListFilter),
        ("revoked_at", admin.EmptyFieldListFilter),
        "expires_at",
    )
    list_select_related = ("team",)
    search_fields = ("email", "team__name")
    autocomplete_fields = ("team", "invited_by", "accepted_by")
    date_hierarchy = "created_at"


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """The audit log, read-only: nobody edits history, not even a superuser."""

    list_display = ("created_at", "team", "actor_email", "action", "target_repr")
    list_filter = ("action", "team", "created_at")
    list_select_related = ("team",)
    date_hierarchy = "created_at"
    search_fields = ("actor_email", "target_repr")

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False
