from django.urls import path

from assistants import usage_views, views

app_name = "assistants"

_team = "teams/<uuid:team_id>/"
_one = f"{_team}assistants/<uuid:assistant_id>/"
_run = f"{_team}runs/<uuid:run_id>/"

urlpatterns = [
    path(f"{_team}assistants/", views.assistant_list, name="list"),
    path(f"{_team}assistants/new/", views.assistant_create, name="create"),
    path(
        f"{_team}assistants/import/<uuid:connection_id>/",
        views.assistant_import,
        name="import",
    ),
    path(_one, views.assistant_detail, name="detail"),
    path(f"{_one}edit/", views.assistant_edit, name="edit"),
    path(f"{_one}delete/", views.assistant_delete, name="delete"),
    path(f"{_one}sync/", views.assistant_sync, name="sync"),
    path(f"{_one}run/", views.run_start, name="run_start"),
    path(f"{_team}runs/", views.run_list, name="runs"),
    path(f"{_team}runs/lookup/", views.run_lookup, name="run_lookup"),
    path(_run, views.run_detail, name="run_detail"),
    path(f"{_run}status/", views.run_status, name="run_status"),
    path(f"{_run}refresh/", views.run_refresh, name="run_refresh"),
    path(f"{_run}cancel/", views.run_cancel, name="run_cancel"),
    path(f"{_run}follow-up/", views.run_follow_up, name="run_follow_up"),
    path(f"{_run}retry/", views.run_retry, name="run_retry"),
    path(f"{_team}usage/", usage_views.usage, name="usage"),
]
