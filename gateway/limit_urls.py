from django.urls import path

from gateway import limit_views

app_name = "gateway_limits"

_team = "teams/<uuid:team_id>/"

urlpatterns = [
    path(f"{_team}gateway/limits/", limit_views.limit_overview, name="overview"),
    path(f"{_team}gateway/limits/default/", limit_views.default_limits, name="default"),
    path(
        f"{_team}gateway/limits/default/clear/",
        limit_views.default_limits_clear,
        name="default_clear",
    ),
    path(
        f"{_team}gateway/limits/members/<uuid:membership_id>/",
        limit_views.member_limits,
        name="member",
    ),
    path(
        f"{_team}gateway/limits/members/<uuid:membership_id>/clear/",
        limit_views.member_limits_clear,
        name="member_clear",
    ),
    path(f"{_team}tokens/<uuid:token_id>/limits/", limit_views.token_limits, name="token"),
    path(
        f"{_team}tokens/<uuid:token_id>/limits/clear/",
        limit_views.token_limits_clear,
        name="token_clear",
    ),
]
