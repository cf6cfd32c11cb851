import uuid
from datetime import datetime

from django.conf import settings
from django.contrib.auth.models import AbstractUser, BaseUserManager
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from lib.choices import choice_label


class UserManager(BaseUserManager):
    use_in_migrations = True

    def _create_user(self, email: str, password: str | None, **extra):
        if not email:
            raise ValueError("An email address is required.")
        user = self.model(email=self.normalize_email(email).lower(), **extra)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_user(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", False)
        extra.setdefault("is_superuser", False)
        return self._create_user(email, password, **extra)

    def create_superuser(self, email: str, password: str | None = None, **extra):
        extra.setdefault("is_staff", True)
        extra.setdefault("is_superuser", True)
        return self._create_user(email, password, **extra)

    def get_by_natural_key(self, username):
        return self.get(email__iexact=username)


class User(AbstractUser):
    """A person who signs in with an email address."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    username = None
    first_name = None
    last_name = None
    name = models.CharField(_("name"), max_length=150, blank=True)
    email = models.EmailField(_("email address"), unique=True)
    # The language of what Tablero sends this person (alerts): what they chose on the
    # notifications page, else the page's language when they first signed in; blank for the
    # site's.
    language = models.CharField(
        _("language"), max_length=10, blank=True, choices=settings.LANGUAGES
    )

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: list[str] = []

    objects = UserManager()

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")
        ordering = ["email"]
        constraints = [
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email

    def get_full_name(self) -> str:
        return self.name or self.email

    def get_short_name(self) -> str:
        return self.name or self.email.split("@")[0]

    def clean(self):
        super().clean()
        self.email = self.email.strip().lower()


class Role(models.TextChoices):
    OWNER = "owner", _("Owner")
    ADMIN = "admin", _("Admin")
    MEMBER = "member", _("Member")
    VIEWER = "viewer", _("Viewer")

    @property
    def rank(self) -> int:
        return ROLE_RANK[self]

    def at_least(self, other: "Role") -> bool:
        return ROLE_RANK[self] >= ROLE_RANK[Role(other)]


ROLE_RANK = {Role.VIEWER: 0, Role.MEMBER: 1, Role.ADMIN: 2, Role.OWNER: 3}

# What each role may do, in a sentence (the invite form shows them).
ROLE_DESCRIPTIONS = {
    Role.VIEWER: _(
        "Sees the connections, models, assistants and runs; changes nothing and starts no run."
    ),
    Role.MEMBER: _(
        "Also creates, edits and runs assistants, and holds their own API tokens. Never sees "
        "or changes a key."
    ),
    Role.ADMIN: _(
        "Also adds, replaces and removes connections and keys, sees errors and costs, invites "
        "people and changes roles (not an owner's)."
    ),
    Role.OWNER: _("Also deletes the team and hands ownership to someone else."),
}


class Team(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    name = models.CharField(_("name"), max_length=100)
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, through="Membership", related_name="teams"
    )

    class Meta:
        verbose_name = _("team")
        verbose_name_plural = _("teams")
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Membership(models.Model):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(_("role"), max_length=10, choices=Role.choices, default=Role.VIEWER)
    created_at = models.DateTimeField(_("joined"), default=timezone.now)

    class Meta:
        verbose_name = _("membership")
        verbose_name_plural = _("memberships")
        ordering = ["team__name", "user__email"]
        indexes = [
            # The members page counts each role of the team (an index-only scan), then reads
            # each role's members by email (accounts.selectors.MemberListing).
            models.Index(fields=["team", "role"], name="accounts_member_team_role"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["team", "user"], name="accounts_membership_unique"),
            models.CheckConstraint(
                condition=models.Q(role__in=Role.values), name="accounts_membership_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.user} @ {self.team} ({self.role})"

    @property
    def role_enum(self) -> Role:
        return Role(self.role)

    def get_role_display(self) -> object:  # on every row of the members page (lib.choices)
        return choice_label(Role, self.role)


class InvitationQuerySet(models.QuerySet):
    def pending(self, *, now: datetime | None = None) -> "InvitationQuerySet":
        """Invitations that can still be accepted: neither accepted nor revoked, not expired
        (at `now`, by default the present). `Invitation.is_pending` says the same of one."""
        return self.filter(
            accepted_at__isnull=True,
            revoked_at__isnull=True,
            expires_at__gt=now or timezone.now(),
        )


class Invitation(models.Model):
    """An invitation to join a team with a role, accepted through a signed link."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField(_("email address"))
    role = models.CharField(_("role"), max_length=10, choices=Role.choices, default=Role.VIEWER)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(_("created"), default=timezone.now)
    expires_at = models.DateTimeField(_("expires"))
    accepted_at = models.DateTimeField(_("accepted"), null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    revoked_at = models.DateTimeField(_("revoked"), null=True, blank=True)

    objects = InvitationQuerySet.as_manager()

    class Meta:
        verbose_name = _("invitation")
        verbose_name_plural = _("invitations")
        ordering = ["-created_at"]
        indexes = [
            # The members page's pending invitations, newest first (those not accepted or
            # revoked; the expiry is checked on the few rows this leaves).
            models.Index(
                fields=["team", "-created_at"],
                name="accounts_invitation_open",
                condition=models.Q(accepted_at__isnull=True, revoked_at__isnull=True),
            ),
        ]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(role__in=Role.values), name="accounts_invitation_role_valid"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.team} ({self.role})"

    def get_role_display(self) -> object:  # on every row of the members page (lib.choices)
        return choice_label(Role, self.role)

    @property
    def is_pending(self) -> bool:
        """Whether it can still be accepted (the rule of InvitationQuerySet.pending)."""
        return self.accepted_at is None and self.revoked_at is None and not self.is_expired

    @property
    def is_expired(self) -> bool:
        return self.expires_at <= timezone.now()


class AuditAction(models.TextChoices):
    """What an audit event records. The value is stored (and exported in the CSV); the label
    is what the audit page shows."""

    TEAM_CREATE = "team.create", _("Team created")
    TEAM_RENAME = "team.rename", _("Team renamed")
    TEAM_ALERT_SETTINGS = "team.alert_settings", _("Alert settings changed")
    TEAM_DELETE = "team.delete", _("Team deleted")
    MEMBER_INVITE = "member.invite", _("Member invited")
    MEMBER_ADD = "member.add", _("Member added")
    MEMBER_ROLE_CHANGE = "member.role_change", _("Role changed")
    MEMBER_REMOVE = "member.remove", _("Member removed")
    INVITATION_REVOKE = "invitation.revoke", _("Invitation revoked")
    INVITATION_ACCEPT = "invitation.accept", _("Invitation accepted")
    CONNECTION_CREATE = "connection.create", _("Connection added")
    CONNECTION_TEST = "connection.test", _("Connection tested")
    CONNECTION_REPLACE_KEY = "connection.replace_key", _("Key replaced")
    CONNECTION_UPDATE = "connection.update", _("Connection edited")
    CONNECTION_DELETE = "connection.delete", _("Connection removed")
    CONNECTION_SET_ADMIN_KEY = "connection.set_admin_key", _("Admin key set")
    CONNECTION_REMOVE_ADMIN_KEY = "connection.remove_admin_key", _("Admin key removed")
    ASSISTANT_CREATE = "assistant.create", _("Assistant created")
    ASSISTANT_UPDATE = "assistant.update", _("Assistant edited")
    ASSISTANT_SYNC = "assistant.sync", _("Assistant synced")
    ASSISTANT_DELETE = "assistant.delete", _("Assistant deleted")
    ASSISTANT_IMPORT = "assistant.import", _("Assistants imported")
    RUN_START = "run.start", _("Run started")
    RUN_CANCEL = "run.cancel", _("Run cancelled")
    TOKEN_CREATE = "token.create", _("API token created")
    TOKEN_REVOKE = "token.revoke", _("API token revoked")
    TOKEN_EXPIRE = "token.expire", _("API token expired")
    PRICE_CREATE = "price.create", _("Model price added")
    PRICE_UPDATE = "price.update", _("Model price edited")
    PRICE_DELETE = "price.delete", _("Model price removed")
    LIMIT_SET = "limit.set", _("Usage limits set")
    LIMIT_CLEAR = "limit.clear", _("Usage limits removed")


class AuditEvent(models.Model):
    """Something that happened in a team. Never holds a secret value."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    team = models.ForeignKey(
        Team, null=True, blank=True, on_delete=models.CASCADE, related_name="audit_events"
    )
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    # Kept so the log still reads after the actor's account is deleted.
    actor_email = models.EmailField(_("actor"), blank=True)
    action = models.CharField(
        _("action"), max_length=64, choices=AuditAction.choices, db_index=True
    )
    target_type = models.CharField(_("target type"), max_length=64, blank=True)
    target_id = models.CharField(_("target id"), max_length=64, blank=True)
    target_repr = models.CharField(_("target"), max_length=200, blank=True)
    data = models.JSONField(_("details"), default=dict, blank=True)
    created_at = models.DateTimeField(_("when"), default=timezone.now, db_index=True)

    class Meta:
        verbose_name = _("audit event")
        verbose_name_plural = _("audit events")
        ordering = ["-created_at"]
        indexes = [
            # The log's order, newest first and the id between events of the same moment:
            # a page is read from the index in order, whatever the size of the log.
            models.Index(fields=["team", "-created_at", "-id"], name="accounts_audit_team_newest"),
            # The audit filters, each newest first: by member, by action, by connection.
            models.Index(fields=["team", "actor", "-created_at"], name="accounts_audit_actor"),
            models.Index(fields=["team", "action", "-created_at"], name="accounts_audit_action"),
            models.Index(
                fields=["team", "target_type", "target_id", "-created_at"],
                name="accounts_audit_target",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.actor_email} {self.action}"

    def get_action_display(self) -> str:
        """The action's label. Django's own reads the choices through make_hashable, which
        translates every action's lazy label to hash it: milliseconds a row on the audit log."""
        try:
            return AuditAction(self.action).label
        except ValueError:
            return self.action

    def details(self) -> list[tuple[str, str]]:
        """The data in words, in the reader's language (accounts.audit_words)."""
        from accounts.audit_words import audit_details  # it reads Role from this module

        return audit_details(self.data)
