"""The API tokens page of a team: the tokens one may see, making one, revoking one.

Everyone in the team may hold tokens (a viewer, read-only ones); an admin or owner sees and
revokes everyone's and makes service tokens. A new token's value is shown once, in the answer
to the POST that made it (never stored, never cached, no URL to come back to it); afterwards
only its prefix is shown.
"""

from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import get_script_prefix
from django.utils.cache import add_never_cache_headers
from django.utils.translation import gettext as _
from django.views.decorators.debug import sensitive_variables
from django.views.decorators.http import require_http_methods, require_safe

from accounts.access import get_team_for_user
from gateway import selectors, services
from gateway.forms import TokenCreateForm
from gateway.snippets import example_model, snippets
from lib.forms import posted
from lib.pagination import paginate


@login_required
@require_safe
def token_list(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id)
    listing = selectors.token_list(access=access)
    pages = {
        "active_pages": paginate(request, listing.active),
        "ended_pages": paginate(request, listing.ended, prefix="ended_"),
    }
    for pages_of in pages.values():
        page = pages_of.page
        page.object_list = selectors.token_month_use(access=access, tokens=page.object_list)
    return render(
        request,
        "gateway/token_list.html",
        {**pages, "month_start": selectors.month_start()},
    )


def gateway_base_url(request: HttpRequest) -> str:
    """The address programs use for the gateway, as this request reached the site."""
    return request.build_absolute_uri(f"{get_script_prefix()}v1")


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
@sensitive_variables("value", "examples")
def token_create(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id)
    form = TokenCreateForm(posted(request), team=access.team, role=access.role)
    if form.is_bound and form.is_valid():
        try:
            token, value = services.token_create(
                team=access.team,
                created_by=request.user,
                owner=None if form.is_service else request.user,
                **form.service_kwargs(),
            )
        except ValidationError as invalid:
            form.add_error(None, invalid.messages)
        else:
            model = example_model(
                allowed=token.allowed_models,
                offered=selectors.cached_model_ids(token.connection),
            )
            examples = snippets(
                base_url=gateway_base_url(request),
                token=value,
                scopes=token.scope_set,
                model=model,
            )
            response = render(
                request,
                "gateway/token_created.html",
                {"token": token, "value": value, "snippets": examples},
            )
            # Shown once: no cache (browser, proxy) may keep it to show it again.
            add_never_cache_headers(response)
            response["Cache-Control"] = "no-store, no-cache, must-revalidate, private, max-age=0"
            response["Referrer-Policy"] = "no-referrer"
            return response
    return render(request, "gateway/token_create.html", {"form": form})


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def token_revoke(request: HttpRequest, team_id: UUID, token_id: UUID) -> HttpResponse:
    """Confirm (GET), then revoke (POST). Your own tokens, or anyone's as an admin."""
    access = get_team_for_user(request, team_id)
    token = selectors.token_get(access=access, pk=token_id)
    if request.method == "POST":
        was_revoked = token.is_revoked
        services.token_revoke(token=token, actor=request.user)
        if was_revoked:
            messages.info(request, _("This token was already revoked."))
        else:
            messages.success(
                request,
                _("Token “%(name)s” revoked: programs using it are refused from now on.")
                % {"name": token.name},
            )
        return redirect("gateway:tokens", team_id=access.team.pk)
    return render(request, "gateway/token_revoke.html", {"token": token})
