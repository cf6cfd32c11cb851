"""The team home's "Test again" (dashboard:connection_test) and the row it refreshes
(dashboard:connection_row): with htmx the row comes back in place; without JavaScript the
form posts and the page comes back with a message."""

import uuid

import pytest
from django.urls import reverse

from connections.models import Health
from fakeprovider.keys import KEY_INVALID, KEY_OK
from tests.connections.helpers import make_connection


def _test_url(team, connection) -> str:
    return reverse("dashboard:connection_test", args=[team.pk, connection.pk])


def _row_url(team, connection) -> str:
    return reverse("dashboard:connection_row", args=[team.pk, connection.pk])


def test_the_home_offers_it_with_htmx_and_a_plain_form(admin_client_, team):
    connection = make_connection(team, name="Production", health=Health.OK)
    body = admin_client_.get(reverse("dashboard:team_home", args=[team.pk])).content.decode()
    row = body.split(f'id="connection-row-{connection.pk}"')[1].split("</tr>")[0]
    assert f'method="post" action="{_test_url(team, connection)}"' in row  # without JavaScript
    assert f'hx-post="{_test_url(team, connection)}"' in row and 'hx-target="closest tr"' in row
    assert "Testing…" in row  # what the button says while it works


def test_with_htmx_the_row_comes_back_updated(admin_client_, team, fake_upstream):
    connection = make_connection(
        team, name="Production", key=KEY_INVALID, base_url=fake_upstream.base_url
    )
    response = admin_client_.post(_test_url(team, connection), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    row = response.content.decode()
    assert row.lstrip().startswith(f'<tr id="connection-row-{connection.pk}"')
    assert "<html" not in row
    assert "Invalid key" in row and "Working" not in row
    assert [request.path for request in fake_upstream.requests] == ["/v1/models"]
    # The home page shows it too: the check dropped the cached part.
    body = admin_client_.get(reverse("dashboard:team_home", args=[team.pk])).content.decode()
    assert "The key of Production was refused" in body


def test_without_javascript_it_posts_and_comes_back(admin_client_, team, fake_upstream):
    connection = make_connection(
        team, name="Production", key=KEY_OK, base_url=fake_upstream.base_url
    )
    response = admin_client_.post(_test_url(team, connection), follow=True)
    assert response.redirect_chain == [(reverse("dashboard:team_home", args=[team.pk]), 302)]
    body = response.content.decode()
    assert "Production works." in body
    assert '1 <span class="muted small">/ 1</span>' in body  # one of one working


def test_a_check_under_way_keeps_asking_for_the_row(admin_client_, team, settings):
    from connections import tasks
    from lib.progress import progress_mark

    connection = make_connection(team, name="Production", health=Health.OK)
    progress_mark(tasks.check_key(connection.pk), ttl=60)
    row = admin_client_.get(_row_url(team, connection)).content.decode()
    assert f'hx-get="{_row_url(team, connection)}"' in row and 'hx-trigger="every 2s"' in row
    assert 'aria-busy="true"' in row and "Testing…" in row


@pytest.mark.parametrize("role", ["member", "viewer"])
def test_only_admins_test(request, role, team):
    client = request.getfixturevalue(f"{role}_client")
    connection = make_connection(team, name="Production", health=Health.OK)
    assert client.post(_test_url(team, connection)).status_code == 403
    row = client.get(_row_url(team, connection)).content.decode()
    assert "Production" in row and "Test again" not in row


def test_outsiders_anonymous_bad_ids_and_methods(outsider_client, client, admin_client_, team):
    connection = make_connection(team, name="Production", health=Health.OK)
    assert outsider_client.post(_test_url(team, connection)).status_code == 404
    assert outsider_client.get(_row_url(team, connection)).status_code == 404
    assert client.post(_test_url(team, connection)).status_code == 302
    assert client.get(_row_url(team, connection)).status_code == 302
    missing = reverse("dashboard:connection_test", args=[team.pk, uuid.uuid4()])
    assert admin_client_.post(missing).status_code == 404
    missing_row = reverse("dashboard:connection_row", args=[team.pk, uuid.uuid4()])
    assert admin_client_.get(missing_row).status_code == 404
    assert admin_client_.get(_test_url(team, connection)).status_code == 405
    assert admin_client_.post(_row_url(team, connection)).status_code == 405
