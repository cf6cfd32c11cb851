from typing import Any

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts and teams")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_login_failed

        from accounts.services import user_note_language
        from accounts.throttle import count_known_device_failure

        user_login_failed.connect(count_known_device_failure, dispatch_uid="known_device_failure")
        user_logged_in.connect(user_note_language, dispatch_uid="note_language")

        # The team switcher's cached list (accounts.selectors.switcher_memberships) is forgotten
        # whenever a membership or a team changes, whichever code path changed it.
        from django.db.models.signals import post_delete, post_save

        from accounts.models import Membership, Team

        for signal in (post_save, post_delete):
            signal.connect(_membership_changed, sender=Membership, dispatch_uid="switcher_m")
            signal.connect(_team_changed, sender=Team, dispatch_uid="switcher_t")


def _forget_after_commit(user_ids: list[Any]) -> None:
    from django.db import transaction

    from accounts.selectors import switcher_forget

    # Now, and again after the commit: a page read in between may have cached what the
    # transaction was about to change.
    switcher_forget(user_ids=user_ids)
    transaction.on_commit(lambda: switcher_forget(user_ids=user_ids))


def _membership_changed(sender: type, instance: Any, **kwargs: Any) -> None:
    _forget_after_commit([instance.user_id])


def _team_changed(sender: type, instance: Any, created: bool = False, **kwargs: Any) -> None:
    if created:
        return  # no members yet
    from accounts.models import Membership

    # A renamed team: its members' switchers show the name. (A deleted one deletes its
    # memberships first, each of which is forgotten on its own.)
    _forget_after_commit(
        list(Membership.objects.filter(team_id=instance.pk).values_list("user_id", flat=True))
    )
