"""The first run (setup), the way in (home, sign-in) and password resets."""

from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext_lazy as _
from django.views.decorators.debug import sensitive_post_parameters
from django_ratelimit.core import is_ratelimited

from accounts import services
from accounts.access import SESSION_TEAM_KEY
from accounts.forms import SetupForm, axes_client_ip
from accounts.models import Membership, User
from accounts.throttle import remember_device
from accounts.views.common import LOGIN_BACKEND, form_page
from lib.forms import posted

# Password reset requests allowed per client address, and reset mails per email address.
PASSWORD_RESET_RATE_PER_CLIENT = "10/h"
PASSWORD_RESET_RATE_PER_EMAIL = "3/h"


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
@form_page
def setup(request: HttpRequest) -> HttpResponse:
    """The first visit: create the owner's account and the first team."""
    if User.objects.exists():
        raise Http404
    form = SetupForm(posted(request))
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
        login(request, owner, backend=LOGIN_BACKEND)
        messages.success(request, _("Welcome to Tablero. Your team is ready."))
        response = redirect("dashboard:team_home", team_id=team.pk)
        remember_device(request, response, owner.get_username())
        return response
    return render(request, "accounts/setup.html", {"form": form})
