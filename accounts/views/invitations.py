"""Accepting an invitation from its link: signed in, signing in, or signing up."""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth import login
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters

from accounts import services
from accounts.forms import InvitationSignUpForm
from accounts.models import Invitation, Membership, Team, User
from accounts.throttle import remember_device
from accounts.tokens import InvitationTokenError, TokenProblem, invitation_id_from_token
from accounts.views.common import LOGIN_BACKEND, error_text, form_page
from lib.forms import posted

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
    if invitation.is_expired:
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
@form_page
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
            messages.error(request, error_text(error))
            return redirect("home")
        return _welcome(request, invitation.team)
    context["already_member"] = Membership.objects.filter(team=invitation.team, user=user).exists()
    return render(request, "accounts/invitation_accept.html", context)


def _invitation_sign_up(
    request: HttpRequest, invitation: Invitation, context: dict
) -> HttpResponse:
    form = InvitationSignUpForm(posted(request), email=invitation.email)
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
            login(request, user, backend=LOGIN_BACKEND)
            response = _welcome(request, invitation.team)
            remember_device(request, response, user.get_username())
            return response
    context["form"] = form
    return render(request, "accounts/invitation_sign_up.html", context)
