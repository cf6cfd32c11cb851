from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DashboardConfig(AppConfig):
    """The top floor: pages that compose several apps (the team home) and the demo seeding.
    Nothing below imports it."""

    name = "dashboard"
    verbose_name = _("Dashboard")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from dashboard import alerts, checklist, home_cache

        alerts.connect()
        checklist.register_steps()  # first: the home cache listens to what the steps read
        home_cache.connect()
