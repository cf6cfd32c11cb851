from django.urls import path

from gateway import usage_views

app_name = "gateway_usage"

_team = "teams/<uuid:team_id>/gateway/"

urlpatterns = [
    path(f"{_team}usage/", usage_views.usage_page, name="summary"),
    path(f"{_team}usage/export/", usage_views.usage_export, name="export"),
    path(f"{_team}prices/", usage_views.price_list, name="prices"),
    path(f"{_team}prices/new/", usage_views.price_create, name="price_create"),
    path(f"{_team}prices/<uuid:price_id>/edit/", usage_views.price_edit, name="price_edit"),
    path(f"{_team}prices/<uuid:price_id>/delete/", usage_views.price_delete, name="price_delete"),
]
