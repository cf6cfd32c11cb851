"""Gateway tokens, and the record of each call made through the gateway.

A token lets a program use one connection of one team through `/v1/`, without its key. Only
the token's public prefix and an HMAC of its secret are stored (`gateway.tokens`). A call
record keeps who called what and how it went, never a body, prompt or output.
"""

import uuid
from datetime import datetime

from django.conf import settings
from django.db import models
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Team
from connections.models import Connection
from gateway import tokens
from gateway.scopes import SHORT_LABELS, Scope


class TokenKind(models.TextChoices):
    PERSONAL = "personal", _("Personal")
    SERVICE = "service", _("Service")


class ApiTokenQuerySet(models.QuerySet):
    def usable(self, *, now: datetime | None = None) -> "ApiTokenQuerySet":
        """Tokens neither revoked nor expired (at `now`, by default the present)."""
        return self.filter(revoked_at__isnull=True, expires_at__gt=now or timezone.now())


class ApiToken(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="api_tokens")
    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(_("name"), max_length=100)
    kind = models.CharField(
        _("kind"), max_length=10, choices=TokenKind.choices, default=TokenKind.PERSONAL
    )
    # The member a personal token belongs to; empty for a service token (the team's).
    owner = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="api_tokens",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    prefix = models.CharField(_("prefix"), max_length=tokens.PREFIX_LENGTH, unique=True)
    secret_digest = models.CharField(max_length=64, editable=False)
    scopes = models.JSONField(_("scopes"), default=list)
    # Empty: every model the connection offers.
    allowed_models = models.JSONField(_("allowed models"), default=list, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires"))
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)
    revoked_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # When the expiry sweep noted (and audited) that it expired; empty until then.
    expiry_noted_at = models.DateTimeField(_("expiry noted"), null=True, blank=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True)
    last_used_ip = models.GenericIPAddressField(_("last used from"), null=True, blank=True)

    objects = ApiTokenQuerySet.as_manager()

    class Meta:
        verbose_name = _("API token")
        verbose_name_plural = _("API tokens")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["team", "-created_at"], name="gateway_token_team_when"),
            # The token list counts the team's tokens in use and those ended lately from
            # this small index alone (an index-only scan, not a read of every token's row).
            models.Index(fields=["team", "revoked_at", "expires_at"], name="gateway_token_state"),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(kind__in=TokenKind.values), name="gateway_token_kind_valid"
            ),
            # A personal token has its member; a service token has none.
            models.CheckConstraint(
                condition=(
                    models.Q(kind=TokenKind.PERSONAL, owner__isnull=False)
                    | models.Q(kind=TokenKind.SERVICE, owner__isnull=True)
                ),
                name="gateway_token_owner_matches_kind",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.display_prefix})"

    @property
    def display_prefix(self) -> str:
        return tokens.display(self.prefix)

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()

    @property
    def is_usable(self) -> bool:
        return not self.is_revoked and not self.is_expired

    @property
    def scope_set(self) -> frozenset[Scope]:
        return frozenset(Scope(s) for s in self.scopes if s in Scope.values)

    @property
    def scope_labels(self) -> list[dict[str, str]]:
        """The token's scopes for a page, in the order of `Scope`: a short word and a title."""
        held = self.scope_set
        return [{"short": SHORT_LABELS[s], "label": s.label} for s in Scope if s in held]


class Refusal(models.TextChoices):
    """Which of Tablero's checks refused a call, where a page counts them (blank otherwise)."""

    FAIR_SHARE_REQUESTS = "fair_share_requests", _("Fair share of the provider's request limit")
    FAIR_SHARE_TOKENS = "fair_share_tokens", _("Fair share of the provider's token limit")
    # Tablero's own limits (gateway.limits): "limit_<whose>_<which>", as limits.Refusal says.
    TOKEN_RPM = "limit_token_rpm", _("Requests per minute (the token's limit)")
    TOKEN_TPM = "limit_token_tpm", _("Tokens per minute (the token's limit)")
    TOKEN_CONCURRENT = "limit_token_concurrent", _("Concurrent requests (the token's limit)")
    TOKEN_MONTH_TOKENS = "limit_token_month_tokens", _("Monthly token budget (the token's)")
    TOKEN_MONTH_MONEY = "limit_token_month_money", _("Monthly money budget (the token's)")
    MEMBER_RPM = "limit_member_rpm", _("Requests per minute (the member's limit)")
    MEMBER_TPM = "limit_member_tpm", _("Tokens per minute (the member's limit)")
    MEMBER_CONCURRENT = "limit_member_concurrent", _("Concurrent requests (the member's limit)")
    MEMBER_MONTH_TOKENS = "limit_member_month_tokens", _("Monthly token budget (the member's)")
    MEMBER_MONTH_MONEY = "limit_member_month_money", _("Monthly money budget (the member's)")
    TEAM_DEFAULT_RPM = "limit_team_default_rpm", _("Requests per minute (the team default)")
    TEAM_DEFAULT_TPM = "limit_team_default_tpm", _("Tokens per minute (the team default)")
    TEAM_DEFAULT_CONCURRENT = (
        "limit_team_default_concurrent",
        _("Concurrent requests (the team default)"),
    )
    TEAM_DEFAULT_MONTH_TOKENS = (
        "limit_team_default_month_tokens",
        _("Monthly token budget (the team default)"),
    )
    TEAM_DEFAULT_MONTH_MONEY = (
        "limit_team_default_month_money",
        _("Monthly money budget (the team default)"),
    )


FAIR_SHARE_REFUSALS = (Refusal.FAIR_SHARE_REQUESTS, Refusal.FAIR_SHARE_TOKENS)
# Tablero's own limits refused these (a 429 rate_limit_exceeded or insufficient_quota).
LIMIT_REFUSALS = tuple(r for r in Refusal if r.startswith("limit_"))


class GatewayCall(models.Model):
    """One request through the gateway: who, what, how it went. Never a body."""

    id = models.BigAutoField(primary_key=True)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="+")
    token = models.ForeignKey(
        ApiToken, null=True, blank=True, on_delete=models.SET_NULL, related_name="calls"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    connection = models.ForeignKey(
        Connection, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    family = models.CharField(_("endpoint family"), max_length=16, choices=Scope.choices)
    method = models.CharField(_("method"), max_length=8)
    path = models.CharField(_("path"), max_length=200)
    model = models.CharField(_("model"), max_length=200, blank=True)
    status = models.PositiveSmallIntegerField(_("status"))
    # Whether Tablero refused it (True) or the provider answered (False).
    refused = models.BooleanField(_("refused by Tablero"), default=False)
    # Why, for the refusals a page counts (the fair share of the provider's limit, and
    # Tablero's own limits: which one, and whose).
    refusal = models.CharField(
        _("refusal"), max_length=32, choices=Refusal.choices, blank=True, default=""
    )
    request_id = models.CharField(_("request ID"), max_length=200, blank=True)
    streamed = models.BooleanField(_("streamed"), default=False)
    latency_ms = models.PositiveIntegerField(_("latency (ms)"), null=True, blank=True)
    first_byte_ms = models.PositiveIntegerField(_("time to first byte (ms)"), null=True, blank=True)
    input_tokens = models.PositiveIntegerField(_("input tokens"), null=True, blank=True)
    cached_tokens = models.PositiveIntegerField(_("cached input tokens"), null=True, blank=True)
    output_tokens = models.PositiveIntegerField(_("output tokens"), null=True, blank=True)
    created_at = models.DateTimeField(_("when"), default=timezone.now)

    class Meta:
        verbose_name = _("gateway call")
        verbose_name_plural = _("gateway calls")
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["team", "-created_at"], name="gateway_call_team_when"),
            models.Index(fields=["token", "-created_at"], name="gateway_call_token_when"),
            models.Index(fields=["connection", "-created_at"], name="gateway_call_conn_when"),
            # The errors only, for the alert on a burst of them (dashboard.alerts): small.
            models.Index(
                fields=["-created_at"],
                condition=models.Q(status__gte=400) | models.Q(refused=True),
                name="gateway_call_errors_when",
            ),
            # The refusals that say why, per team (the limits overview's last hour): small.
            models.Index(
                fields=["team", "-created_at"],
                condition=~models.Q(refusal=""),
                name="gateway_call_refusal_when",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.method} /v1/{self.path} → {self.status}"


# === Model prices (issue 14): kept by the team, dated, with their currency ====================
# Owned by the usage slice (gateway/prices.py, price_services.py, usage.py); kept here because
# Django finds models in models.py.

CURRENCY_CODE = r"^[A-Z]{3}$"


def plain_decimal(value):
    """A stored price without its trailing zeros and never in exponent form: 8.5, 100."""
    from decimal import Decimal

    return Decimal(format(Decimal(value).normalize(), "f"))


def _price_text(value) -> str:
    from django.utils.formats import number_format

    plain = plain_decimal(value)
    places = max(0, -int(plain.as_tuple().exponent))
    return number_format(plain, decimal_pos=places, force_grouping=True)


class ModelPrice(models.Model):
    """What the team pays for one model, per million tokens, from `effective_from` on.

    The price in force on a call's date is the one with the latest `effective_from` on or
    before that date. A model without a row has no price: nothing is made up for it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="model_prices")
    model = models.CharField(_("model"), max_length=200)
    currency = models.CharField(_("currency"), max_length=3, default="USD")
    input_per_million = models.DecimalField(
        _("input, per million tokens"), max_digits=14, decimal_places=6
    )
    # Empty: cached input is charged at the input price (the model has no discount).
    cached_input_per_million = models.DecimalField(
        _("cached input, per million tokens"),
        max_digits=14,
        decimal_places=6,
        null=True,
        blank=True,
    )
    output_per_million = models.DecimalField(
        _("output, per million tokens"), max_digits=14, decimal_places=6
    )
    effective_from = models.DateField(_("effective from"))
    created_at = models.DateTimeField(_("created"), default=timezone.now)

    class Meta:
        verbose_name = _("model price")
        verbose_name_plural = _("model prices")
        ordering = ["model", "-effective_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["team", "model", "effective_from"],
                name="gateway_price_one_per_model_and_date",
                violation_error_message=_(
                    "This model already has a price from that date. Edit that one instead."
                ),
            ),
            models.CheckConstraint(
                condition=models.Q(currency__regex=CURRENCY_CODE),
                name="gateway_price_currency_iso",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(input_per_million__gte=0)
                    & models.Q(output_per_million__gte=0)
                    & (
                        models.Q(cached_input_per_million__isnull=True)
                        | models.Q(cached_input_per_million__gte=0)
                    )
                ),
                name="gateway_price_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} ({self.currency}, {self.effective_from:%Y-%m-%d})"

    @property
    def input_text(self) -> str:
        return _price_text(self.input_per_million)

    @property
    def cached_input_text(self) -> str:
        if self.cached_input_per_million is None:
            return ""
        return _price_text(self.cached_input_per_million)

    @property
    def output_text(self) -> str:
        return _price_text(self.output_per_million)

    @property
    def cached_rate(self):
        """The price of a cached input token per million (the input price when none is set)."""
        if self.cached_input_per_million is None:
            return self.input_per_million
        return self.cached_input_per_million


# === Limits (issue 14, item 1): the data only; enforcement comes later =========================


class LimitTarget(models.TextChoices):
    TEAM_DEFAULT = "team_default", _("Team default for new tokens")
    TOKEN = "token", _("Token")
    MEMBER = "member", _("Member (all their tokens)")


class UsageLimit(models.Model):
    """Limits an admin sets on one token, on one member (covering all their tokens), or as
    the team's default for new tokens. An empty field is no limit. The money budget counts
    only calls to models the team has a price for, in `budget_currency`."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="usage_limits")
    target = models.CharField(_("applies to"), max_length=16, choices=LimitTarget.choices)
    token = models.ForeignKey(
        ApiToken, null=True, blank=True, on_delete=models.CASCADE, related_name="limits"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="+",
    )
    requests_per_minute = models.PositiveIntegerField(
        _("requests per minute"), null=True, blank=True
    )
    tokens_per_minute = models.PositiveIntegerField(_("tokens per minute"), null=True, blank=True)
    concurrent_requests = models.PositiveIntegerField(
        _("concurrent requests"), null=True, blank=True
    )
    monthly_token_budget = models.PositiveBigIntegerField(
        _("monthly budget in tokens"), null=True, blank=True
    )
    monthly_money_budget = models.DecimalField(
        _("monthly budget in money"), max_digits=14, decimal_places=2, null=True, blank=True
    )
    budget_currency = models.CharField(_("budget currency"), max_length=3, blank=True)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated"), default=timezone.now)

    class Meta:
        verbose_name = _("usage limit")
        verbose_name_plural = _("usage limits")
        constraints = [
            models.CheckConstraint(
                condition=models.Q(target__in=LimitTarget.values), name="gateway_limit_target"
            ),
            # Each kind of limit names exactly what it applies to.
            models.CheckConstraint(
                condition=(
                    models.Q(target=LimitTarget.TEAM_DEFAULT, token__isnull=True, user__isnull=True)
                    | models.Q(target=LimitTarget.TOKEN, token__isnull=False, user__isnull=True)
                    | models.Q(target=LimitTarget.MEMBER, token__isnull=True, user__isnull=False)
                ),
                name="gateway_limit_target_matches",
            ),
            models.UniqueConstraint(
                fields=["team"],
                condition=models.Q(target=LimitTarget.TEAM_DEFAULT),
                name="gateway_limit_one_team_default",
            ),
            models.UniqueConstraint(
                fields=["token"],
                condition=models.Q(token__isnull=False),
                name="gateway_limit_one_per_token",
            ),
            models.UniqueConstraint(
                fields=["team", "user"],
                condition=models.Q(user__isnull=False),
                name="gateway_limit_one_per_member",
            ),
            # A money budget says in which currency.
            models.CheckConstraint(
                condition=(
                    models.Q(monthly_money_budget__isnull=True)
                    | models.Q(budget_currency__regex=CURRENCY_CODE)
                ),
                name="gateway_limit_budget_currency",
            ),
            models.CheckConstraint(
                condition=(
                    models.Q(monthly_money_budget__isnull=True)
                    | models.Q(monthly_money_budget__gte=0)
                ),
                name="gateway_limit_budget_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_target_display()} limit"
