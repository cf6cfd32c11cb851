from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class GatewayConfig(AppConfig):
    name = "gateway"
    verbose_name = _("Gateway")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from gateway import onboarding, panels, services, signals

        services.connect()  # tokens revoked when a member leaves or becomes a viewer
        signals.connect()  # grants forgotten on every process when what they rest on changes
        onboarding.register_step()
        panels.register()  # its traffic on a connection's page
