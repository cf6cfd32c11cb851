"""The pending rule, written once: InvitationQuerySet.pending() and Invitation.is_pending agree,
and the members page lists exactly the pending invitations."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from accounts.models import Invitation
from tests.accounts.helpers import make_invitation

pytestmark = pytest.mark.django_db


@pytest.fixture
def invitations(team, pinned_clock):
    now = timezone.now()
    return {
        "pending": make_invitation(team, email="pending@example.com"),
        "expired": make_invitation(
            team, email="expired@example.com", expires_in=timedelta(seconds=-1)
        ),
        "accepted": make_invitation(team, email="accepted@example.com", accepted_at=now),
        "revoked": make_invitation(team, email="revoked@example.com", revoked_at=now),
    }


def test_the_queryset_and_the_instance_say_the_same(invitations):
    pending = set(Invitation.objects.pending().values_list("email", flat=True))
    assert pending == {"pending@example.com"}
    assert {i.email for i in invitations.values() if i.is_pending} == pending


def test_an_invitation_stops_being_pending_when_it_expires(invitations, pinned_clock):
    pinned_clock.shift(timedelta(days=3, minutes=1))
    assert not Invitation.objects.pending().exists()
    invitation = invitations["pending"]
    assert invitation.is_expired and not invitation.is_pending


def test_the_members_page_lists_only_pending_invitations(admin_client_, team, invitations):
    page = admin_client_.get(reverse("accounts:members", args=[team.pk])).content.decode()
    assert "pending@example.com" in page
    for state in ("expired", "accepted", "revoked"):
        assert f"{state}@example.com" not in page
