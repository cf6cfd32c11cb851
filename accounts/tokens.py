"""Signed invitation links.

The link carries only the invitation's id, signed with a salt of its own and a timestamp, so it
cannot be forged or reused for another purpose, and it stops working after
settings.INVITATION_MAX_AGE even if the stored expiry were later.
"""

import uuid
from enum import StrEnum

from django.conf import settings
from django.core import signing

_SALT = "tablero.accounts.invitation"


class TokenProblem(StrEnum):
    INVALID = "invalid"
    EXPIRED = "expired"


class InvitationTokenError(Exception):
    def __init__(self, problem: TokenProblem):
        super().__init__(problem.value)
        self.problem = problem


def invitation_token(invitation_id: uuid.UUID) -> str:
    return signing.TimestampSigner(salt=_SALT).sign(invitation_id.hex)


def invitation_id_from_token(token: str) -> uuid.UUID:
    """Return the invitation id a token was signed for; raise InvitationTokenError if not."""
    signer = signing.TimestampSigner(salt=_SALT)
    try:
        value = signer.unsign(token, max_age=settings.INVITATION_MAX_AGE)
    except signing.SignatureExpired:
        raise InvitationTokenError(TokenProblem.EXPIRED) from None
    except signing.BadSignature:
        raise InvitationTokenError(TokenProblem.INVALID) from None
    try:
        return uuid.UUID(hex=value)
    except ValueError:
        raise InvitationTokenError(TokenProblem.INVALID) from None
