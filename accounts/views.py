"""Pages for the first run, teams, members, invitations and the audit log."""

import csv
import json
import logging
import smtplib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit
from uuid import UUID

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.mail import send_mail
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseBadRequest,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_http_methods, require_POST, require_safe
from django_ratelimit.core import is_ratelimited

from accounts import selectors, services
from accounts.access import SESSION_TEAM_KEY, TeamAccess, get_team_for_user
from accounts.forms import (
    AuditFilterForm,
    InvitationSignUpForm,
    InviteForm,
    RoleForm,
    SetupForm,
    TeamDeleteForm,
    TeamForm,
    axes_client_ip,
)
from accounts.models import AuditEvent, Invitation, Membership, Role, Team, User
from accounts.throttle import remember_device
from accounts.tokens import (
    InvitationTokenError,
    TokenProblem,
    invitation_id_from_token,
    invitation_token,
)

logger = logging.getLogger(__name__)

# Pages that show a form (GET) and take it back (POST); anything else is a 405.
_form_page = require_http_methods(["GET", "HEAD", "POST"])
# Sign-ins done by Tablero itself (after setup or sign-up) skip django-axes.
_LOGIN_BACKEND = "django.contrib.auth.backends.ModelBackend"
# The invitation created last on this session, whose link the members page shows.
_NEW_INVITATION_KEY = "tablero_new_invitation"
# Password reset requests allowed per client address, and reset mails per email address.
PASSWORD_RESET_RATE_PER_CLIENT = "10/h"
PASSWORD_RESET_RATE_PER_EMAIL = "3/h"


def _errors(error: ValidationError) -> str:
    return " ".join(error.messages)


def _posted(request: HttpRequest):
    return request.POST if request.method == "POST" else None


def home(request: HttpRequest) -> HttpResponse:
    """Send each visitor where they belong: setup, sign in, their team, or team creation."""
    if not request.user.is_authenticated:
        if not User.objects.exists():
            return redirect("accounts:setup")
        return redirect("accounts:login")
    memberships = Membership.objects.filter(user=request.user)
    wanted = request.session.get(SESSION_TEAM_KEY)
    membership = memberships.filter(team_id=wanted).first() if wanted else None
    membership = membership or memberships.order_by("created_at").first()
    if membership is None:
        return redirect("accounts:team_create")
    return redirect("dashboard:team_home", team_id=membership.team_id)


class LoginView(auth_views.LoginView):
    """Django's sign-in page, sending a signed-in visitor straight on. A browser that signs in
    is remembered as a known device of the account (see accounts/throttle.py)."""

    redirect_authenticated_user = True

    def form_valid(self, form):
        response = super().form_valid(form)
        remember_device(self.request, response, form.get_user().get_username())
        return response

    def get_redirect_url(self) -> str:
        # "?next=" is checked by Django against other hosts. One naming this page itself would
        # make Django refuse a signed-in visitor with a redirect-loop error (a 500): ignore it.
        url = super().get_redirect_url()
        return "" if url and urlsplit(url).path == self.request.path else url


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    """Django's new-password page from the emailed link. The browser that used the link proved
    it reads the account's email: it becomes a known device, so it can sign in even while
    guesses from elsewhere pause the account."""

    def form_valid(self, form):
        response = super().form_valid(form)
        remember_device(self.request, response, form.user.get_username())
        return response


class PasswordResetView(auth_views.PasswordResetView):
    """Django's password reset by email, offered only when Tablero can send email: with the
    default console backend the reset link would land in the server's log."""

    def dispatch(self, request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not settings.TABLERO_SEND_EMAIL:
            return render(request, "accounts/password_reset_unavailable.html")
        return super().dispatch(request, *args, **kwargs)

    def form_valid(self, form):
        # Nobody may use Tablero to flood a mailbox: a few requests per address an hour, and a
        # few mails per email address. The second limit is silent, like an unknown address, so
        # the page never tells whether an address is known or how often it was asked for.
        if is_ratelimited(
            self.request,
            group="password_reset:client",
            key=lambda _group, request: axes_client_ip(request) or "",
            rate=PASSWORD_RESET_RATE_PER_CLIENT,
            method="POST",
            increment=True,
        ):
            form.add_error(
                None, _("Too many password reset requests from your address. Try again later.")
            )
            return self.form_invalid(form)
        if is_ratelimited(
            self.request,
            group="password_reset:email",
            key=lambda _group, _request: form.cleaned_data["email"].strip().lower(),
            rate=PASSWORD_RESET_RATE_PER_EMAIL,
            method="POST",
            increment=True,
        ):
            return redirect(self.get_success_url())
        return super().form_valid(form)


@sensitive_post_parameters("password1", "password2")
@_form_page
def setup(request: HttpRequest) -> HttpResponse:
    """The first visit: create the owner's account and the first team."""
    if User.objects.exists():
        raise Http404
    form = SetupForm(_posted(request))
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            owner, team = services.setup_first_owner(
                email=data["email"],
                name=data["name"],
                password=data["password1"],
                team_name=data["team_name"],
            )
        except services.SetupAlreadyDone:
            raise Http404 from None
        login(request, owner, backend=_LOGIN_BACKEND)
        messages.success(request, _("Welcome to Tablero. Your team is ready."))
        response = redirect("dashboard:team_home", team_id=team.pk)
        remember_device(request, response, owner.get_username())
        return response
    return render(request, "accounts/setup.html", {"form": form})


# --- Teams -----------------------------------------------------------------------------------


@login_required
@_form_page
def team_create(request: HttpRequest) -> HttpResponse:
    form = TeamForm(_posted(request))
    if form.is_bound and form.is_valid():
        team = services.team_create(name=form.cleaned_data["name"], owner=request.user)
        messages.success(request, _("Team “%(name)s” created.") % {"name": team.name})
        return redirect("dashboard:team_home", team_id=team.pk)
    return render(request, "accounts/team_create.html", {"form": form})


@login_required
@_form_page
def team_settings(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    team = access.team
    form = TeamForm(_posted(request), initial={"name": team.name})
    if form.is_bound and form.is_valid():
        services.team_rename(team=team, name=form.cleaned_data["name"], actor=request.user)
        messages.success(request, _("Team renamed."))
        return redirect("accounts:team_settings", team_id=team.pk)
    context = {"access": access, "team": team, "form": form}
    return render(request, "accounts/team_settings.html", context)


@login_required
@_form_page
def team_delete(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.OWNER)
    team = access.team
    form = TeamDeleteForm(_posted(request), team=team)
    if form.is_bound and form.is_valid():
        name = team.name
        services.team_delete(team=team, actor=request.user)
        request.session.pop(SESSION_TEAM_KEY, None)
        messages.success(request, _("Team “%(name)s” deleted.") % {"name": name})
        return redirect("home")
    context = {"access": access, "team": team, "form": form}
    return render(request, "accounts/team_delete.html", context)


# --- Members and invitations -----------------------------------------------------------------


@dataclass(frozen=True)
class MemberRow:
    membership: Membership
    is_self: bool
    # May this visitor change the member's role or remove them?
    manageable: bool
    # Is this the team's only owner (who can be neither demoted nor removed)?
    last_owner: bool


def _member_rows(access: TeamAccess, memberships: list[Membership], user: User) -> list[MemberRow]:
    owners = sum(m.role == Role.OWNER for m in memberships)
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
    memberships = list(selectors.member_list(team=team))
    context = {
        "access": access,
        "team": team,
        "rows": _member_rows(access, memberships, request.user),
        "roles": services.assignable_roles(access.role),
    }
    if access.is_admin:
        invitations = list(selectors.invitation_pending_list(team=team))
        new_id = request.session.pop(_NEW_INVITATION_KEY, None)
        new = next((i for i in invitations if str(i.pk) == new_id), None)
        context.update(
            invitations=[(i, services.can_manage(access.role, i.role)) for i in invitations],
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
        messages.error(request, _errors(error))
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
        messages.error(request, _errors(error))
    else:
        messages.success(
            request,
            _("%(person)s is now %(role)s.")
            % {"person": membership.user.get_full_name(), "role": membership.get_role_display()},
        )
    return redirect("accounts:members", team_id=access.team.pk)


@login_required
@require_POST
def member_remove(request: HttpRequest, team_id: UUID, membership_id: UUID) -> HttpResponse:
    # Anyone may leave; removing someone else needs admin (checked here and in the service).
    access = get_team_for_user(request, team_id)
    membership = get_object_or_404(
        Membership.objects.select_related("user"), pk=membership_id, team=access.team
    )
    leaving = membership.user_id == request.user.pk
    if not leaving and not access.is_admin:
        raise PermissionDenied
    try:
        services.member_remove(membership=membership, actor=request.user, actor_role=access.role)
    except ValidationError as error:
        messages.error(request, _errors(error))
        return redirect("accounts:members", team_id=access.team.pk)
    if leaving:
        request.session.pop(SESSION_TEAM_KEY, None)
        messages.success(request, _("You left “%(team)s”.") % {"team": access.team.name})
        return redirect("home")
    messages.success(
        request,
        _("%(person)s was removed from the team.") % {"person": membership.user.get_full_name()},
    )
    return redirect("accounts:members", team_id=access.team.pk)


# --- Accepting an invitation -----------------------------------------------------------------

_PROBLEMS = {
    TokenProblem.INVALID: _("This invitation link is not valid. Check that you copied all of it."),
    TokenProblem.EXPIRED: _("This invitation has expired."),
    "revoked": _("This invitation was withdrawn."),
    "used": _("This invitation has already been used."),
    "gone": _("This invitation no longer exists."),
    services.INVITER_CANNOT_GRANT: services.INVITER_CANNOT_GRANT_MESSAGE,
}
# What to do instead, where asking the person who sent the link is no help.
_ADVICE = {
    services.INVITER_CANNOT_GRANT: _("Ask a team admin for a new invitation."),
}


def _invitation_problem(request: HttpRequest, problem: str) -> HttpResponse:
    context = {"problem": _PROBLEMS[problem], "advice": _ADVICE.get(problem)}
    return render(request, "accounts/invitation_invalid.html", context, status=410)


def _invitation_state(invitation: Invitation) -> str | None:
    if invitation.revoked_at is not None:
        return "revoked"
    if invitation.accepted_at is not None:
        return "used"
    if invitation.expires_at <= timezone.now():
        return TokenProblem.EXPIRED
    if not services.invitation_inviter_can_grant(invitation):
        return services.INVITER_CANNOT_GRANT
    return None


def _inviter_cannot_grant(error: ValidationError) -> bool:
    # Found on submitting (the inviter was demoted since the page was shown).
    return getattr(error, "code", None) == services.INVITER_CANNOT_GRANT


def _welcome(request: HttpRequest, team: Team) -> HttpResponse:
    messages.success(request, _("Welcome to “%(team)s”.") % {"team": team.name})
    return redirect("dashboard:team_home", team_id=team.pk)


@sensitive_post_parameters("password1", "password2")
@_form_page
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    try:
        invitation_id = invitation_id_from_token(token)
    except InvitationTokenError as error:
        return _invitation_problem(request, error.problem)
    invitation = (
        Invitation.objects.select_related("team", "invited_by").filter(pk=invitation_id).first()
    )
    if invitation is None:
        return _invitation_problem(request, "gone")
    user = request.user
    already_in = (
        user.is_authenticated
        and invitation.accepted_by_id == user.pk
        and Membership.objects.filter(team=invitation.team, user=user).exists()
    )
    if already_in:
        # A second click on the link (or on Accept) by the person who accepted it.
        return redirect("dashboard:team_home", team_id=invitation.team_id)
    problem = _invitation_state(invitation)
    if problem is not None:
        return _invitation_problem(request, problem)
    context: dict = {"invitation": invitation, "team": invitation.team}
    if not user.is_authenticated:
        if User.objects.filter(email__iexact=invitation.email).exists():
            query = urlencode({"next": request.get_full_path()})
            context["login_url"] = f"{reverse('accounts:login')}?{query}"
            return render(request, "accounts/invitation_sign_in.html", context)
        return _invitation_sign_up(request, invitation, context)
    if user.email.lower() != invitation.email.lower():
        return render(request, "accounts/invitation_mismatch.html", context, status=403)
    if request.method == "POST":
        try:
            services.invitation_accept(invitation=invitation, user=user)
        except ValidationError as error:
            if _inviter_cannot_grant(error):
                return _invitation_problem(request, services.INVITER_CANNOT_GRANT)
            messages.error(request, _errors(error))
            return redirect("home")
        return _welcome(request, invitation.team)
    context["already_member"] = Membership.objects.filter(team=invitation.team, user=user).exists()
    return render(request, "accounts/invitation_accept.html", context)


def _invitation_sign_up(
    request: HttpRequest, invitation: Invitation, context: dict
) -> HttpResponse:
    form = InvitationSignUpForm(_posted(request), email=invitation.email)
    if form.is_bound and form.is_valid():
        try:
            user = services.invitation_sign_up(
                invitation=invitation,
                name=form.cleaned_data["name"],
                password=form.cleaned_data["password1"],
            )
        except ValidationError as error:
            if _inviter_cannot_grant(error):
                return _invitation_problem(request, services.INVITER_CANNOT_GRANT)
            form.add_error(None, error)
        else:
            login(request, user, backend=_LOGIN_BACKEND)
            response = _welcome(request, invitation.team)
            remember_device(request, response, user.get_username())
            return response
    context["form"] = form
    return render(request, "accounts/invitation_sign_up.html", context)


# --- Audit log -------------------------------------------------------------------------------

_AUDIT_PAGE_SIZE = 50


@login_required
@require_safe
def audit(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    form = AuditFilterForm(request.GET or None, team=access.team)
    if form.is_bound:
        form.is_valid()
    events = selectors.audit_event_list(team=access.team, **form.filters())
    page = Paginator(events, _AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    page.object_list = [_scrubbed(event) for event in page.object_list]
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "access": access,
        "team": access.team,
        "form": form,
        "page_obj": page,
        "export_query": query.urlencode(),
    }
    return render(request, "accounts/audit.html", context)


def _scrubbed(event: AuditEvent) -> AuditEvent:
    # Events are scrubbed when written; this also covers those an older version wrote.
    event.data = services.audit_data_scrub(event.data)
    return event


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> str:
    """A cell a spreadsheet will not run as a formula."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def _audit_rows(events: Iterable[AuditEvent]) -> Iterator[list[object]]:
    yield [_("When"), _("Actor"), _("Action"), _("Target type"), _("Target"), _("Details")]
    for event in events:
        yield [
            timezone.localtime(event.created_at).isoformat(),
            event.actor_email,
            event.action,
            event.target_type,
            event.target_repr,
            json.dumps(_scrubbed(event).data, ensure_ascii=False, sort_keys=True),
        ]


@login_required
@require_safe
def audit_export(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    form = AuditFilterForm(request.GET, team=access.team)
    if not form.is_valid():
        return HttpResponseBadRequest(
            _("The filters are not valid. Go back to the audit log and correct them."),
            content_type="text/plain; charset=utf-8",
        )
    events = selectors.audit_event_list(team=access.team, **form.filters())
    writer = csv.writer(_Echo())
    lines = (
        writer.writerow([csv_safe(cell) for cell in row])
        for row in _audit_rows(events.iterator(chunk_size=500))
    )
    response = StreamingHttpResponse(lines, content_type="text/csv; charset=utf-8")
    filename = f"tablero-audit-{timezone.localdate():%Y-%m-%d}.csv"
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
