from collections import defaultdict
from uuid import UUID

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.actions import delete_selected as django_delete_selected
from django.contrib.admin.utils import unquote
from django.contrib.auth import forms as auth_forms
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.core.exceptions import ValidationError
from django.db import router, transaction
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from accounts import services
from accounts.models import AuditAction, AuditEvent, Invitation, Membership, Role, Team, User
from accounts.services import audit_log

# --- A team keeps an owner, here as on the members page --------------------------------------


def _owner_refusal(memberships: QuerySet[Membership]) -> str | None:
    """Why deleting `memberships` is refused (it would leave a team without an owner), or None.
    Locks the owners of the teams concerned: call it inside the deletion's transaction."""
    losing: dict[UUID, set[UUID]] = defaultdict(set)
    names: dict[UUID, str] = {}
    for membership in memberships.select_related("team"):
        losing[membership.team_id].add(membership.pk)
        names[membership.team_id] = membership.team.name
    for team_id in sorted(losing):  # always the same order, so concurrent deletions queue up
        if not services.team_keeps_an_owner(team_id=team_id, losing=losing[team_id]):
            return _(
                "“%(team)s” would be left without an owner. Make someone else owner first."
            ) % {"team": names[team_id]}
    return None


class _KeepsTeamOwners:
    """Refuses a deletion (one object or the bulk action) that would take a team's last owner
    with it, with a message and before the confirmation page, instead of deleting it."""

    def memberships_deleted_with(self, queryset: QuerySet) -> QuerySet[Membership]:
        raise NotImplementedError

    def delete_view(self, request, object_id, extra_context=None):
        with transaction.atomic(using=router.db_for_write(self.model)):
            obj = self.get_object(request, unquote(object_id))
            if obj is not None:
                objects = self.model._default_manager.filter(pk=obj.pk)
                refusal = _owner_refusal(self.memberships_deleted_with(objects))
                if refusal:
                    self.message_user(request, refusal, messages.ERROR)
                    opts = self.opts
                    return HttpResponseRedirect(
                        reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
                    )
            return super().delete_view(request, object_id, extra_context)

    @admin.action(permissions=["delete"], description=django_delete_selected.short_description)
    def delete_selected(self, request, queryset):
        # Replaces the site-wide action of the same name for this model.
        with transaction.atomic(using=router.db_for_write(self.model)):
            refusal = _owner_refusal(self.memberships_deleted_with(queryset))
            if refusal:
                self.message_user(request, refusal, messages.ERROR)
                return None
            return django_delete_selected(self, request, queryset)


def _revoke_invitations(request, *, team: Team, user: User, role: str | None) -> None:
    """Revoke the invitations `user` sent to `team` that `role` (None: no longer a member) may
    not give, as the members page does on a demotion or a removal."""
    services.invitation_revoke_ungrantable(
        team=team,
        inviter=user,
        role=Role(role) if role is not None else None,
        actor=request.user,
        reason="inviter_demoted" if role is not None else "inviter_removed",
        via="admin",
    )


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
class UserAdmin(_KeepsTeamOwners, BaseUserAdmin):
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
    actions = ("delete_selected",)

    def memberships_deleted_with(self, queryset: QuerySet[User]) -> QuerySet[Membership]:
        return Membership.objects.filter(user__in=queryset)


# --- Teams and memberships (changes here are audited like those made in the app) -------------


def _membership_data(membership: Membership) -> dict:
    return {"email": membership.user.email, "role": membership.role, "via": "admin"}


class MembershipInlineFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        if self.instance._state.adding or any(self.errors):
            return
        # Rows left out of the form stay as they are; the service counts them.
        losing, gaining = set(), set()
        for form in self.forms:
            data = getattr(form, "cleaned_data", None)
            if not data:  # an untouched extra row
                continue
            if data.get("DELETE") or data.get("role") != Role.OWNER:
                if not form.instance._state.adding:
                    losing.add(form.instance.pk)
            else:
                gaining.add(form.instance.pk)
        if not services.team_keeps_an_owner(
            team_id=self.instance.pk, losing=losing, gaining=gaining
        ):
            raise ValidationError(services.LAST_OWNER)


class MembershipInline(admin.TabularInline):
    model = Membership
    formset = MembershipInlineFormSet
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
                action=AuditAction.TEAM_CREATE,
                target=obj,
                data={"via": "admin"},
            )
        elif "name" in form.changed_data:
            audit_log(
                team=obj,
                actor=request.user,
                action=AuditAction.TEAM_RENAME,
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
            if not f.instance._state.adding:
                _audit_member_remove(request, f.instance)
                _revoke_invitations(request, team=team, user=f.instance.user, role=None)
        changed = [
            f.instance for f in formset.forms if not f.instance._state.adding and f.has_changed()
        ]
        previous = {m.pk: m.role for m in Membership.objects.filter(pk__in=[m.pk for m in changed])}
        super().save_formset(request, form, formset, change)
        for membership in formset.new_objects:
            audit_log(
                team=team,
                actor=request.user,
                action=AuditAction.MEMBER_ADD,
                target=membership,
                data=_membership_data(membership),
            )
        for membership, _fields in formset.changed_objects:
            _audit_role_change(request, membership, previous.get(membership.pk))
            _revoke_invitations(request, team=team, user=membership.user, role=membership.role)


def _audit_team_delete(request, team: Team) -> None:
    audit_log(
        team=None,
        actor=request.user,
        action=AuditAction.TEAM_DELETE,
        target=team,
        data={"name": team.name, "via": "admin"},
    )


def _audit_role_change(request, membership: Membership, old_role: str | None) -> None:
    if old_role is None or old_role == membership.role:
        return
    audit_log(
        team=membership.team,
        actor=request.user,
        action=AuditAction.MEMBER_ROLE_CHANGE,
        target=membership,
        data={
            "email": membership.user.email,
            "from": old_role,
            "to": membership.role,
            "via": "admin",
        },
    )


class MembershipAdminForm(forms.ModelForm):
    class Meta:
        model = Membership
        fields = ("team", "user", "role", "created_at")

    def clean(self) -> dict:
        cleaned = super().clean()
        membership = self.instance  # still as stored: the form's values are copied on after this
        if membership._state.adding or cleaned.get("team") is None or not cleaned.get("role"):
            return cleaned
        stays_owner = cleaned["team"].pk == membership.team_id and cleaned["role"] == Role.OWNER
        if not stays_owner and not services.team_keeps_an_owner(
            team_id=membership.team_id, losing=[membership.pk]
        ):
            raise ValidationError(services.LAST_OWNER)
        return cleaned


@admin.register(Membership)
class MembershipAdmin(_KeepsTeamOwners, admin.ModelAdmin):
    form = MembershipAdminForm
    actions = ("delete_selected",)
    list_display = ("team", "user", "role", "created_at")
    list_filter = ("role", "team")
    list_select_related = ("team", "user")
    search_fields = ("user__email", "user__name", "team__name")
    autocomplete_fields = ("team", "user")

    def memberships_deleted_with(self, queryset: QuerySet[Membership]) -> QuerySet[Membership]:
        return queryset

    def save_model(self, request, obj: Membership, form, change: bool) -> None:
        old_role = form.initial.get("role") if change else None
        old_place = (str(form.initial.get("team")), str(form.initial.get("user")))
        super().save_model(request, obj, form, change)
        if not change:
            audit_log(
                team=obj.team,
                actor=request.user,
                action=AuditAction.MEMBER_ADD,
                target=obj,
                data=_membership_data(obj),
            )
            return
        _audit_role_change(request, obj, old_role)
        if old_place != (str(obj.team_id), str(obj.user_id)):
            # Moved to another team or person: the former one is no longer a member there.
            _revoke_invitations(
                request,
                team=Team.objects.get(pk=form.initial["team"]),
                user=User.objects.get(pk=form.initial["user"]),
                role=None,
            )
        _revoke_invitations(request, team=obj.team, user=obj.user, role=obj.role)

    def delete_model(self, request, obj: Membership) -> None:
        _audit_member_remove(request, obj)
        _revoke_invitations(request, team=obj.team, user=obj.user, role=None)
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for membership in queryset.select_related("team", "user"):
            _audit_member_remove(request, membership)
            _revoke_invitations(request, team=membership.team, user=membership.user, role=None)
        super().delete_queryset(request, queryset)


def _audit_member_remove(request, membership: Membership) -> None:
    audit_log(
        team=membership.team,
        actor=request.user,
        action=AuditAction.MEMBER_REMOVE,
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
