import csv
import io

from django.urls import reverse

from accounts.services import audit_log


def _url(team):
    return reverse("accounts:audit_export", args=[team.pk])


def _csv(response) -> list[list[str]]:
    content = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(content)))


def test_exports_the_filtered_events(admin_client_, users, team, other_team):
    audit_log(team=team, actor=users["owner"], action="team.rename", target=team, data={"to": "A"})
    audit_log(team=team, actor=users["admin"], action="member.invite", data={"email": "n@x.io"})
    audit_log(team=other_team, actor=users["outsider"], action="team.rename", target=other_team)

    response = admin_client_.get(_url(team), {"action": "team.rename"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="tablero-audit-')
    rows = _csv(response)
    assert rows[0] == ["When", "Actor", "Action", "Target type", "Target", "Details"]
    assert len(rows) == 2
    assert rows[1][1:] == ["owner@example.com", "team.rename", "team", "Acme", '{"to": "A"}']


def test_cells_cannot_become_formulas(admin_client_, users, team):
    for name in ('=HYPERLINK("http://evil")', "+1", "-2", "@SUM(A1)", "plain"):
        audit_log(team=team, actor=users["owner"], action="team.rename", data={"to": name})
        team.name = name
        audit_log(team=team, actor=users["owner"], action="team.rename", target=team)
    targets = [row[4] for row in _csv(admin_client_.get(_url(team)))[1:] if row[4]]
    assert sorted(targets) == sorted(
        ['\'=HYPERLINK("http://evil")', "'+1", "'-2", "'@SUM(A1)", "plain"]
    )


def test_invalid_filters_are_refused(admin_client_, team):
    response = admin_client_.get(_url(team), {"since": "yesterday"})
    assert response.status_code == 400
    assert "The filters are not valid." in response.content.decode()


def test_member_refused(member_client, team):
    assert member_client.get(_url(team)).status_code == 403


def test_export_honours_the_connection_filter(admin_client_, users, team):
    from tests.connections.helpers import make_connection

    production = make_connection(team, name="Production")
    research = make_connection(team, name="Research")
    audit_log(team=team, actor=users["admin"], action="connection.test", target=production)
    audit_log(team=team, actor=users["admin"], action="connection.test", target=research)
    rows = _csv(admin_client_.get(_url(team), {"connection": production.pk}))
    assert [row[3:5] for row in rows[1:]] == [["connection", "Production"]]


def test_dates_at_the_ends_of_the_calendar(admin_client_, users, team):
    audit_log(team=team, actor=users["owner"], action="team.rename", target=team)

    response = admin_client_.get(_url(team), {"since": "0001-01-01", "until": "9999-12-31"})

    assert response.status_code == 200
    assert [row[2] for row in _csv(response)[1:]] == ["team.rename"]
