"""What makes the gateway's cached grants stale, wherever it is written: a member who leaves
or changes role, a user deactivated, a connection removed or pointed elsewhere (its key, base
URL, organization or project), a token revoked or deleted, a usage limit or a model price
set, changed or removed (a grant holds the limits that apply to it and, for money budgets,
the team's prices; one limit can cover many tokens, so the whole team's grants go). A price
change also drops this month's money counted against the team's budgets
(`gateway.limits.forget_team_money`), counted again at the new prices. Each
tells every process, once the transaction commits, through `gateway.grants.forget` / `forget_team`.

Connections are saved often for their health alone; those saves change nothing a grant holds
and are let through.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save

from accounts.models import Membership, User
from connections.models import Connection
from gateway import grants, limits
from gateway.models import ApiToken, ModelPrice, UsageLimit

# What a grant holds of its connection.
_ENDPOINT_FIELDS = frozenset(
    {"base_url", "provider", "organization_id", "project_id", "api_version", "api_key_encrypted"}
)


def _team_changed(team_id: Any) -> None:
    if team_id is not None:
        transaction.on_commit(partial(grants.forget_team, team_id))


def _membership_changed(sender: type, instance: Membership, **kwargs: Any) -> None:
    _team_changed(instance.team_id)


def _connection_saved(
    sender: type, instance: Connection, created: bool, update_fields: Any = None, **kwargs: Any
) -> None:
    if created:
        return
    if update_fields is not None and not _ENDPOINT_FIELDS & set(update_fields):
        return
    _team_changed(instance.team_id)


def _connection_deleted(sender: type, instance: Connection, **kwargs: Any) -> None:
    _team_changed(instance.team_id)


def _user_saved(
    sender: type, instance: User, created: bool, update_fields: Any = None, **kwargs: Any
) -> None:
    if created or (update_fields is not None and "is_active" not in update_fields):
        return
    if instance.is_active:
        return
    for team_id in Membership.objects.filter(user=instance).values_list("team_id", flat=True):
        _team_changed(team_id)


def _token_changed(sender: type, instance: ApiToken, created: bool = False, **kwargs: Any) -> None:
    if not created:
        transaction.on_commit(partial(grants.forget, instance.prefix))


def _team_rule_changed(sender: type, instance: UsageLimit | ModelPrice, **kwargs: Any) -> None:
    _team_changed(instance.team_id)


def _price_changed(sender: type, instance: ModelPrice, **kwargs: Any) -> None:
    """The month's money spent was counted at the old prices: counted again at the new."""
    _team_changed(instance.team_id)
    transaction.on_commit(partial(limits.forget_team_money, instance.team_id))


def connect() -> None:
    post_save.connect(_membership_changed, sender=Membership, dispatch_uid="gateway-membership")
    post_delete.connect(_membership_changed, sender=Membership, dispatch_uid="gateway-member-gone")
    post_save.connect(_connection_saved, sender=Connection, dispatch_uid="gateway-connection")
    post_delete.connect(_connection_deleted, sender=Connection, dispatch_uid="gateway-conn-gone")
    post_save.connect(_user_saved, sender=User, dispatch_uid="gateway-user")
    post_save.connect(_token_changed, sender=ApiToken, dispatch_uid="gateway-token")
    post_delete.connect(_token_changed, sender=ApiToken, dispatch_uid="gateway-token-gone")
    post_save.connect(_team_rule_changed, sender=UsageLimit, dispatch_uid="gateway-limit")
    post_delete.connect(_team_rule_changed, sender=UsageLimit, dispatch_uid="gateway-limit-gone")
    post_save.connect(_price_changed, sender=ModelPrice, dispatch_uid="gateway-price")
    post_delete.connect(_price_changed, sender=ModelPrice, dispatch_uid="gateway-price-gone")
