from django.urls import path

from dashboard import alerts_views, spend_views, views

app_name = "dashboard"

urlpatterns = [
    path("teams/<uuid:team_id>/", views.team_home, name="team_home"),
    path(
        "teams/<uuid:team_id>/home/connections/<uuid:connection_id>/",
        views.connection_row_view,
        name="connection_row",
    ),
    path(
        "teams/<uuid:team_id>/home/connections/<uuid:connection_id>/test/",
        views.connection_test,
        name="connection_test",
    ),
    path(
        "teams/<uuid:team_id>/checklist/dismiss/",
        views.checklist_dismiss_view,
        name="checklist_dismiss",
    ),
    path(
        "teams/<uuid:team_id>/notifications/",
        alerts_views.notifications,
        name="notifications",
    ),
    path("teams/<uuid:team_id>/spend/", spend_views.spend_page, name="spend"),
    path("teams/<uuid:team_id>/spend.csv", spend_views.spend_export, name="spend_csv"),
    path(
        "teams/<uuid:team_id>/settings/alerts/",
        alerts_views.alert_settings,
        name="alert_settings",
    ),
]
