"""The account pages, one module per part: the way in (`signin`), `teams`, `members` (and
invitations sent), accepting `invitations`, and the `audit` log. The URLconf names them here."""

from accounts.views.audit import audit, audit_export
from accounts.views.invitations import invitation_accept
from accounts.views.members import (
    invitation_revoke,
    member_invite,
    member_remove,
    member_role,
    members,
)
from accounts.views.signin import (
    LoginView,
    PasswordResetConfirmView,
    PasswordResetView,
    home,
    setup,
)
from accounts.views.teams import team_create, team_delete, team_settings

__all__ = [
    "LoginView",
    "PasswordResetConfirmView",
    "PasswordResetView",
    "audit",
    "audit_export",
    "home",
    "invitation_accept",
    "invitation_revoke",
    "member_invite",
    "member_remove",
    "member_role",
    "members",
    "setup",
    "team_create",
    "team_delete",
    "team_settings",
]
