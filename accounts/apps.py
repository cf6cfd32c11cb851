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
