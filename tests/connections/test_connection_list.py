import pytest
from django.urls import reverse
from django.utils import timezone

from connections.models import ConnectionErrorEvent, Health
from tests.conftest import client_for
from tests.connections.helpers import make_connection

pytestmark = pytest.mark.django_db


def url(team) -> str:
    return reverse("connections:list", kwargs={"team_id": team.pk})


def test_lists_connections_with_health_and_masked_key(viewer_client, team, other_team):
    make_connection(team, name="Production", health=Health.OK, last_checked_at=timezone.now())
    make_connection(
        team,
        name="Research",
        key="sk-proj-research-000000009999",
        health=Health.NO_QUOTA,
        last_error_kind="quota_exhausted",
    )
    make_connection(other_team, name="Not ours")

    response = viewer_client.get(url(team))

    assert response.status_code == 200
    page = response.content.decode()
    assert "Production" in page and "Research" in page
    assert "Not ours" not in page
    assert "sk-…abcd" in page and "sk-…9999" in page
    assert "Working" in page
    assert "No quota left" in page
    assert "You exceeded your current quota (429)" in page
    assert "never" in page  # Research was never checked


def test_add_button_only_for_admins(users, team):
    add = reverse("connections:create", kwargs={"team_id": team.pk})
    for role in ("owner", "admin"):
        assert add in client_for(users[role]).get(url(team)).content.decode()
    for role in ("member", "viewer"):
        assert add not in client_for(users[role]).get(url(team)).content.decode()


def test_empty_state(admin_client_, team):
    page = admin_client_.get(url(team)).content.decode()
    assert "No connections yet." in page


def test_no_query_per_connection(viewer_client, team, django_assert_max_num_queries):
    for n in range(5):
        make_connection(team, name=f"C{n}")
    viewer_client.get(url(team))  # warm the session
    with django_assert_max_num_queries(8):
        response = viewer_client.get(url(team))
    assert response.status_code == 200


def test_outsider_gets_404(outsider_client, team):
    assert outsider_client.get(url(team)).status_code == 404


def test_anonymous_is_sent_to_sign_in(client, team):
    response = client.get(url(team))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("accounts:login"))


def test_nav_links_to_connections(viewer_client, team):
    page = viewer_client.get(reverse("dashboard:team_home", kwargs={"team_id": team.pk}))
    assert url(team) in page.content.decode()


def test_admins_see_how_many_errors_were_recorded(users, team):
    connection = make_connection(team, health=Health.INVALID_KEY, last_error_kind="invalid_key")
    ConnectionErrorEvent.objects.create(
        connection=connection, kind="invalid_key", operation="connection.test"
    )
    assert "1 error recorded" in client_for(users["admin"]).get(url(team)).content.decode()
    assert "1 error recorded" not in client_for(users["viewer"]).get(url(team)).content.decode()
