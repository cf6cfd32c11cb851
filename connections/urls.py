from django.urls import path

from connections import views

app_name = "connections"

_one = "teams/<uuid:team_id>/connections/<uuid:connection_id>/"

urlpatterns = [
    path("teams/<uuid:team_id>/connections/", views.connection_list, name="list"),
    path("teams/<uuid:team_id>/connections/new/", views.connection_create, name="create"),
    path(_one, views.connection_detail, name="detail"),
    path(f"{_one}test/", views.connection_test, name="test"),
    path(f"{_one}edit/", views.connection_edit, name="edit"),
    path(f"{_one}replace-key/", views.connection_replace_key, name="replace_key"),
    path(f"{_one}delete/", views.connection_delete, name="delete"),
    path(f"{_one}costs/", views.connection_costs, name="costs"),
    path(f"{_one}costs/refresh/", views.connection_costs_refresh, name="costs_refresh"),
    path(f"{_one}admin-key/", views.connection_admin_key, name="admin_key"),
    path(f"{_one}admin-key/remove/", views.connection_admin_key_remove, name="admin_key_remove"),
    path(f"{_one}models/", views.model_list, name="models"),
    path(f"{_one}refresh-models/", views.models_refresh, name="models_refresh"),
    # Model ids may contain "/" and ":" (fine-tuned and compatible-server models).
    path(f"{_one}models/<path:model_id>/", views.model_detail, name="model_detail"),
]
