"""Usage limits pages: the team's limits at a glance, and the limits of one token, of one
member (covering all their tokens) and the team's default for new tokens.

Admins and owners set and remove limits. Anyone else sees their own: their member limit,
their tokens' limits and the team default, read-only (a POST is refused, 403).
"""

from datetime import timedelta
from typing import Any
from uuid import UUID

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_http_methods, require_POST, require_safe

from accounts import selectors as account_selectors
from accounts.access import TeamAccess, get_team_for_user
from accounts.models import Membership, Role
from gateway import budgets, limit_services, selectors
from gateway.limit_forms import UsageLimitForm, add_service_errors
from gateway.models import ApiToken, LimitTarget, ModelPrice, UsageLimit
from lib.forms import posted
from lib.pagination import paginate


def _price_currency(access: TeamAccess) -> str:
    """The currency of the team's prices when they all share one (the form's suggestion)."""
    currencies = set(ModelPrice.objects.filter(team=access.team).values_list("currency", flat=True))
    return currencies.pop() if len(currencies) == 1 else ""


def _url(name: str, *args: Any) -> str:
    return reverse(name, args=args)


def _limit_page(
    request: HttpRequest,
    access: TeamAccess,
    *,
    limit: UsageLimit | None,
    title: str,
    save: Any,
    clear_url: str,
    back_url: str,
    context: dict[str, Any],
) -> HttpResponse:
    """Show a limit (to anyone allowed to see it), or save it (an admin's POST). Saving with
    every field empty removes the limit."""
    if request.method == "POST" and not access.is_admin:
        raise PermissionDenied
    form = None
    if access.is_admin:
        form = UsageLimitForm(
            posted(request),
            initial=UsageLimitForm.initial_from(limit, currency=_price_currency(access)),
        )
        if form.is_bound and form.is_valid():
            try:
                if form.empty:
                    if limit is not None:
                        limit_services.usage_limit_clear(limit=limit, actor=request.user)
                    messages.success(request, _("No limits set: nothing is limited."))
                else:
                    save(actor=request.user, **form.values())
                    messages.success(request, _("Limits saved."))
            except ValidationError as invalid:
                add_service_errors(form, invalid)
            else:
                return redirect(back_url)
    return render(
        request,
        "gateway/limits/form.html",
        {
            "form": form,
            "limit": limit,
            "title": title,
            "clear_url": clear_url,
            "back_url": back_url,
            **context,
        },
    )


def _cleared(request: HttpRequest, limit: UsageLimit | None, back_url: str) -> HttpResponse:
    if limit is not None:
        limit_services.usage_limit_clear(limit=limit, actor=request.user)
        messages.success(request, _("Limits removed: nothing is limited."))
    else:
        messages.info(request, _("There were no limits to remove."))
    return redirect(back_url)


# The overview says how many calls the limits refused in this last while, and which limits.
REFUSED_LATELY = timedelta(hours=1)


# --- the overview -------------------------------------------------------------------------------


@login_required
@require_safe
def limit_overview(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id)
    team = access.team
    if access.is_admin:
        pages = paginate(request, account_selectors.member_list(team=team))
        memberships = list(pages.page)
    else:
        pages, memberships = None, [access.membership]
    member_use = budgets.budgets_of(
        team=team, group="member", keys=[m.user_id for m in memberships]
    )
    since = timezone.now() - REFUSED_LATELY
    member_refused = selectors.limit_refusals(
        team=team, group="member", keys=[m.user_id for m in memberships], since=since
    )
    members = [
        {"membership": m, "use": member_use[m.user_id], "refused": member_refused.get(m.user_id)}
        for m in memberships
    ]
    limited_tokens = list(
        selectors.visible_tokens(access)
        .filter(limits__isnull=False, revoked_at__isnull=True)
        .select_related("owner")
        .order_by("name")
    )
    token_use = budgets.budgets_of(
        team=team, group="token", keys=[token.pk for token in limited_tokens]
    )
    token_refused = selectors.limit_refusals(
        team=team, group="token", keys=[token.pk for token in limited_tokens], since=since
    )
    tokens = [
        {"token": token, "use": token_use[token.pk], "refused": token_refused.get(token.pk)}
        for token in limited_tokens
    ]
    return render(
        request,
        "gateway/limits/overview.html",
        {
            "default": budgets.team_default(team=team),
            "members": members,
            "pages": pages,
            "tokens": tokens,
            "month_start": budgets.month_start(),
        },
    )


# --- one token, one member, the team default ----------------------------------------------------


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def token_limits(request: HttpRequest, team_id: UUID, token_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id)
    token = selectors.token_get(access=access, pk=token_id)
    team = access.team
    use = budgets.budgets_of(team=team, group="token", keys=[token.pk])[token.pk]
    owner_limit = (
        budgets.member_limits(team=team, user_ids=[token.owner_id]).get(token.owner_id)
        if token.owner_id
        else None
    )
    return _limit_page(
        request,
        access,
        limit=use.limit,
        title=_("Limits of the token “%(name)s”") % {"name": token.name},
        save=lambda **values: limit_services.usage_limit_set(team=team, token=token, **values),
        clear_url=_url("gateway_limits:token_clear", team.pk, token.pk),
        back_url=_url("gateway_limits:token", team.pk, token.pk),
        context={
            "target": LimitTarget.TOKEN,
            "token": token,
            "use": use,
            "owner_limit": owner_limit,
            "default": budgets.team_default(team=team),
        },
    )


@login_required
@require_POST
def token_limits_clear(request: HttpRequest, team_id: UUID, token_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    token = get_object_or_404(ApiToken, pk=token_id, team=access.team)
    limit = budgets.token_limits(team=access.team, token_ids=[token.pk]).get(token.pk)
    return _cleared(request, limit, _url("gateway_limits:token", access.team.pk, token.pk))


def _membership(access: TeamAccess, membership_id: UUID, *, request: HttpRequest) -> Membership:
    """One member of the team: anyone's for an admin, one's own otherwise (403)."""
    membership = get_object_or_404(
        Membership.objects.select_related("user"), pk=membership_id, team=access.team
    )
    if not access.is_admin and membership.user_id != request.user.pk:
        raise PermissionDenied
    return membership


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def member_limits(request: HttpRequest, team_id: UUID, membership_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id)
    membership = _membership(access, membership_id, request=request)
    team, user = access.team, membership.user
    use = budgets.budgets_of(team=team, group="member", keys=[user.pk])[user.pk]
    return _limit_page(
        request,
        access,
        limit=use.limit,
        title=_("Limits of %(member)s") % {"member": user.name or user.email},
        save=lambda **values: limit_services.usage_limit_set(team=team, user=user, **values),
        clear_url=_url("gateway_limits:member_clear", team.pk, membership.pk),
        back_url=_url("gateway_limits:member", team.pk, membership.pk),
        context={
            "target": LimitTarget.MEMBER,
            "member": membership,
            "use": use,
            "default": budgets.team_default(team=team),
        },
    )


@login_required
@require_POST
def member_limits_clear(request: HttpRequest, team_id: UUID, membership_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    membership = get_object_or_404(Membership, pk=membership_id, team=access.team)
    limit = budgets.member_limits(team=access.team, user_ids=[membership.user_id]).get(
        membership.user_id
    )
    return _cleared(request, limit, _url("gateway_limits:member", access.team.pk, membership.pk))


@login_required
@require_http_methods(["GET", "HEAD", "POST"])
def default_limits(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id)
    team = access.team
    return _limit_page(
        request,
        access,
        limit=budgets.team_default(team=team),
        title=_("Team default for new tokens"),
        save=lambda **values: limit_services.usage_limit_set(team=team, **values),
        clear_url=_url("gateway_limits:default_clear", team.pk),
        back_url=_url("gateway_limits:default", team.pk),
        context={"target": LimitTarget.TEAM_DEFAULT},
    )


@login_required
@require_POST
def default_limits_clear(request: HttpRequest, team_id: UUID) -> HttpResponse:
    access = get_team_for_user(request, team_id, min_role=Role.ADMIN)
    limit = budgets.team_default(team=access.team)
    return _cleared(request, limit, _url("gateway_limits:default", access.team.pk))
