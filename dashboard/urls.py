from django.urls import path

from dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("teams/<uuid:team_id>/", views.team_home, name="team_home"),
]
