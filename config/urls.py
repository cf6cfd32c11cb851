from django.contrib import admin
from django.urls import include, path
from django.utils.translation import gettext_lazy as _

from accounts import views as account_views
from config import health

# The admin site is Tablero's, not "Django administration" (its favicon: templates/admin/).
admin.site.site_header = _("Tablero administration")
admin.site.site_title = _("Tablero administration")
admin.site.index_title = _("Tablero's data")

urlpatterns = [
    path("", account_views.home, name="home"),
    # Answered by config.health.HealthCheckMiddleware before the other middleware; named here.
    path("healthz", health.healthz, name="healthz"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("admin/", admin.site.urls),
    path("", include("accounts.urls")),
    path("", include("connections.urls")),
    path("", include("assistants.urls")),
    path("", include("dashboard.urls")),
    path("", include("gateway.urls")),
    path("", include("gateway.usage_urls")),
    path("", include("gateway.limit_urls")),
]
