"""The members page: who is in the team, inviting, changing roles, removing, revoking."""

import logging
import smtplib
from dataclasses import dataclass
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.html import format_html_join
from django.utils.safestring import mark_safe
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts import selectors, services
from accounts.access import SESSION_TEAM_KEY, TeamAccess, get_team_for_user
from accounts.forms import InviteForm, RoleForm
from accounts.models import Invitation, Membership, Role, User
from accounts.tokens import invitation_token
from accounts.views.common import error_text
from lib.pagination import paginate
from lib.urls import row_url

logger = logging.getLogger(__name__)

# The invitation created last on this session, whose link the members page shows.
_NEW_INVITATION_KEY = "tablero_new_invitation"


@dataclass(frozen=True)
class MemberRow:
    membership: Membership
    is_self: bool
    # May this visitor change the member's role or remove them?
    manageable: bool
    # Is this the team's only owner (who can be neither demoted nor removed)?
    last_owner: bool
    # The row's links, made once per page (lib.urls) rather than reversed per row.
    limits_url: str
    role_url: str
    remove_url: str
    # The role form of a manageable row: its label and its select's options, made in Python
    # (a {% blocktranslate %} and a loop of options per row cost more than the rest of it).
    role_label: str = ""
    role_options: str = ""


def _role_options(roles: list[Role]) -> dict[str, str]:
    """The role select's options with each role selected in turn, made once per page."""
    return {
        current.value: format_html_join(
            "",
            '<option value="{}"{}>{}</option>',
            ((r.value, mark_safe(" selected") if r == current else "", r.label) for r in roles),
        )
        for current in Role
    }


def _member_rows(
    access: TeamAccess, memberships: list[Membership], user: User, owners: int, roles: list[Role]
) -> list[MemberRow]:
    team_id = access.team.pk
    limits = row_url("gateway_limits:member", team_id)
    role = row_url("accounts:member_role", team_id)
    remove = row_url("accounts:member_remove", team_id)
    options = _role_options(roles)
    rows = []
    for m in memberships:
        last_owner = m.role == Role.OWNER and owners == 1
        manageable = access.is_admin and services.can_manage(access.role, m.role)
        rows.append(
            MemberRow(
                membership=m,
                is_self=m.user_id == user.pk,
                manageable=manageable and not last_owner,
                last_owner=last_owner,
                limits_url=limits(m.pk),
                role_url=role(m.pk),
                remove_url=remove(m.pk),
                role_label=gettext("Role of %(email)s") % {"email": m.user.email}
                if manageable and not last_owner
                else "",
                role_options=options[m.role] if manageable and not last_owner else "",
            )
        )
    return rows


def _invitation_link(request: HttpRequest, invitation: Invitation) -> str:
    path = reverse("accounts:invitation_accept", args=[invitation_token(invitation.pk)])
    return request.build_absolute_uri(path)


def _members_page(
    request: HttpRequest, access: TeamAccess, invite_form: InviteForm | None = None
) -> HttpResponse:
    team = access.team
    members = selectors.member_list(team=team)
    pages = paginate(request, members)
    owners = members.owners
    roles = services.assignable_roles(access.role)
    context = {
        "rows": _member_rows(access, list(pages.page), request.user, owners, roles),
        "pages": pages,
        "roles": roles,
    }
    if access.is_admin:
        invitations = paginate(
            request, selectors.invitation_pending_list(team=team), prefix="invitations_"
        )
        new_id = request.session.pop(_NEW_INVITATION_KEY, None)
        new = selectors.invitation_pending_get(team=team, pk=new_id) if new_id else None
        revoke = row_url("accounts:invitation_revoke", team.pk)
        context.update(
            invitations=[
                (i, services.can_manage(access.role, i.role), revoke(i.pk))
                for i in invitations.page
            ],
            invitation_pages=invitations,
            new_invitation=new,
            new_invitation_link=_invitation_link(request, new) if new else "",
            invite_form=invite_form or InviteForm(team=team, actor_role=access.role),
        )
    return render(request, "accounts/members.html", context)


@login_required
@require_safe
def members(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id)
    return _members_page(request, access)


def _send_invitation(request: HttpRequest, invitation: Invitation, link: str) -> bool:
    context = {"invitation": invitation, "link": link, "inviter": request.user}
    subject = render_to_string("accounts/email/invitation_subject.txt", context)
    body = render_to_string("accounts/email/invitation.txt", context)
    try:
        send_mail(" ".join(subject.split()), body, None, [invitation.email])
    except (smtplib.SMTPException, OSError) as error:
        # The link is a credential: log the failure, never the message.
        logger.warning("Could not send invitation %s: %s", invitation.pk, type(error).__name__)
        return False
    return True


@login_required
@require_POST
def member_invite(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    form = InviteForm(request.POST, team=access.team, actor_role=access.role)
    if not form.is_valid():
        return _members_page(request, access, invite_form=form)
    try:
        invitation = services.invitation_create(
            team=access.team,
            email=form.cleaned_data["email"],
            role=Role(form.cleaned_data["role"]),
            invited_by=request.user,
            actor_role=access.role,
        )
    except ValidationError as error:
        form.add_error("email", error)
        return _members_page(request, access, invite_form=form)
    request.session[_NEW_INVITATION_KEY] = str(invitation.pk)
    if settings.TABLERO_SEND_EMAIL:
        if _send_invitation(request, invitation, _invitation_link(request, invitation)):
            messages.success(
                request, _("Invitation sent to %(email)s.") % {"email": invitation.email}
            )
        else:
            messages.warning(
                request,
                _("The email could not be sent. Copy the link below and send it yourself."),
            )
    else:
        messages.success(
            request,
            _("Invitation created for %(email)s. Copy the link below and send it to them.")
            % {"email": invitation.email},
        )
    return redirect("accounts:members", team_id=access.team.pk)


@login_required
@require_POST
def invitation_revoke(request: HttpRequest, team_id: UUID, invitation_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    invitation = get_object_or_404(Invitation, pk=invitation_id, team=access.team)
    try:
        services.invitation_revoke(
            invitation=invitation, actor=request.user, actor_role=access.role
        )
    except ValidationError as error:
        messages.error(request, error_text(error))
    else:
        messages.success(
            request, _("The invitation for %(email)s was revoked.") % {"email": invitation.email}
        )
    return redirect("accounts:members", team_id=access.team.pk)


@login_required
@require_POST
def member_role(request: HttpRequest, team_id: UUID, membership_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    membership = get_object_or_404(
        Membership.objects.select_related("user"), pk=membership_id, team=access.team
    )
    form = RoleForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose one of the offered roles."))
        return redirect("accounts:members", team_id=access.team.pk)
    try:
        membership = services.member_role_change(
            membership=membership,
            role=Role(form.cleaned_data["role"]),
            actor=request.user,
            actor_role=access.role,
        )
    except ValidationError as error:
        messages.error(request, error_text(error))
    else:
        messages.success(
            request,
            _("“%(person)s” is now %(role)s.")
            % {"person": membership.user.get_full_name(), "role": membership.get_role_display()},
        )
    return redirect("accounts:members", team_id=access.team.pk)


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def member_remove(request: HttpRequest, team_id: UUID, membership_id: UUID) -> HttpResponse:
    """GET asks first (a page: it works without JavaScript); POST removes, or leaves."""
    # Anyone may leave; removing someone else needs admin (checked here and in the service).
    access = get_team_for_user(request, team_id)
    membership = get_object_or_404(
        Membership.objects.select_related("user"), pk=membership_id, team=access.team
    )
    leaving = membership.user_id == request.user.pk
    if not leaving and not access.is_admin:
        raise PermissionDenied
    if request.method != "POST":
        context = {"team": access.team, "membership": membership, "leaving": leaving}
        return render(request, "accounts/member_remove.html", context)
    try:
        services.member_remove(membership=membership, actor=request.user, actor_role=access.role)
    except ValidationError as error:
        messages.error(request, error_text(error))
        return redirect("accounts:members", team_id=access.team.pk)
    if leaving:
        request.session.pop(SESSION_TEAM_KEY, None)
        messages.success(request, _("You left “%(team)s”.") % {"team": access.team.name})
        return redirect("home")
    messages.success(
        request,
        _("“%(person)s” was removed from the team.") % {"person": membership.user.get_full_name()},
    )
    return redirect("accounts:members", team_id=access.team.pk)
