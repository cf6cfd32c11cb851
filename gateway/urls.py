from django.urls import path

from gateway import views

app_name = "gateway"

urlpatterns = [
    path("teams/<uuid:team_id>/tokens/", views.token_list, name="tokens"),
    path("teams/<uuid:team_id>/tokens/new/", views.token_create, name="token_create"),
    path(
        "teams/<uuid:team_id>/tokens/<uuid:token_id>/revoke/",
        views.token_revoke,
        name="token_revoke",
    ),
]
