"""The gateway's step of the team home's getting-started checklist (lib.onboarding)."""

from django.db.models import Exists
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from lib.onboarding import Step, register


def register_step() -> None:
    from gateway.models import ApiToken

    register(
        Step(
            key="api_token",
            order=60,
            title=_("Create an API token"),
            hint=_("Programs call the models through Tablero with it, never with the key."),
            min_role="viewer",
            done=lambda team: Exists(ApiToken.objects.filter(team=team)),
            url=lambda team: reverse("gateway:tokens", args=[team.pk]),
            watch=("gateway.ApiToken",),
        )
    )
