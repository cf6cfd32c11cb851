from datetime import UTC, datetime, timedelta

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts import selectors
from accounts.models import AuditEvent, Membership
from accounts.services import audit_log


def _url(team):
    return reverse("accounts:audit", args=[team.pk])


def _event(team, actor, action, when=None, **data):
    event = audit_log(team=team, actor=actor, action=action, target=team, data=data)
    if when is not None:
        AuditEvent.objects.filter(pk=event.pk).update(created_at=when)
    return event


def _rows(body: str) -> int:
    return body.split("<tbody>")[1].split("</tbody>")[0].count("<tr>") if "<tbody>" in body else 0


def test_lists_events_newest_first(admin_client_, users, team, other_team):
    day = datetime(2026, 3, 1, 12, tzinfo=UTC)
    _event(team, users["owner"], "team.rename", when=day, to="Acme")
    _event(team, users["admin"], "member.invite", when=day + timedelta(hours=1), email="x@y.z")
    _event(other_team, users["outsider"], "connection.delete", when=day)

    body = admin_client_.get(_url(team)).content.decode()
    assert "2 events" in body
    table = body.split("<tbody>")[1]
    # Each action in words, newest first; the stored code stays out of the table.
    assert table.index("Member invited") < table.index("Team renamed")
    assert ">member.invite<" not in table
    assert "admin@example.com" in body
    assert "x@y.z" in body
    assert "Connection removed" not in table


def test_actions_read_in_the_visitors_language(admin_client_, users, team):
    _event(team, users["owner"], "connection.replace_key")
    AuditEvent.objects.create(team=team, actor=users["owner"], action="some.future_action")
    body = admin_client_.get(_url(team), HTTP_ACCEPT_LANGUAGE="es").content.decode()
    table = body.split("<tbody>")[1]
    assert "Clave reemplazada" in table
    assert '<option value="connection.replace_key">Clave reemplazada</option>' in body
    # An action this version has no words for is shown as stored, not hidden.
    assert "some.future_action" in table


def test_filters_by_member_action_and_dates(admin_client_, users, team):
    day = datetime(2026, 3, 1, 12, tzinfo=UTC)
    _event(team, users["owner"], "team.rename", when=day)
    _event(team, users["admin"], "member.invite", when=day + timedelta(days=1))
    _event(team, users["admin"], "member.remove", when=day + timedelta(days=2))

    by_actor = admin_client_.get(_url(team), {"actor": users["admin"].pk}).content.decode()
    assert "2 events" in by_actor
    by_action = admin_client_.get(_url(team), {"action": "team.rename"}).content.decode()
    assert "1 event" in by_action
    by_dates = admin_client_.get(
        _url(team), {"since": "2026-03-02", "until": "2026-03-02"}
    ).content.decode()
    assert "1 event" in by_dates
    assert "Member invited" in by_dates.split("<tbody>")[1]


def test_member_choices_are_team_members_only(admin_client_, users, team):
    body = admin_client_.get(_url(team)).content.decode()
    assert "admin@example.com" in body
    assert "outsider@example.com" not in body
    response = admin_client_.get(_url(team), {"actor": users["outsider"].pk})
    assert "Select a valid choice." in response.content.decode()


def test_action_choices_are_the_known_actions(admin_client_, users, team):
    # A fixed list: the filter does not read the whole log to learn which actions occur.
    _event(team, users["owner"], "team.rename")
    body = admin_client_.get(_url(team)).content.decode()
    assert '<option value="team.rename">Team renamed</option>' in body
    assert '<option value="member.remove">Member removed</option>' in body
    # And each row's action is a link that filters by it.
    assert 'href="?action=team.rename"' in body


def test_member_and_target_are_found_by_text(admin_client_, users, team):
    users["member"].name = "Marta Ruiz"
    users["member"].save(update_fields=["name"])
    _event(team, users["member"], "member.invite")
    _event(team, users["owner"], "team.rename")
    assert "1 event" in admin_client_.get(_url(team), {"who": "marta"}).content.decode()
    assert "1 event" in admin_client_.get(_url(team), {"who": "OWNER@"}).content.decode()
    by_target = admin_client_.get(_url(team), {"target": team.name[:3]}).content.decode()
    assert "2 events" in by_target


def test_reversed_dates_are_explained(admin_client_, team):
    response = admin_client_.get(_url(team), {"since": "2026-03-02", "until": "2026-03-01"})
    assert "The end date is before the start date." in response.content.decode()


def test_paginates_by_fifty_keeping_filters(admin_client_, users, team):
    for number in range(60):
        _event(team, users["owner"], "team.rename", n=number)
    first = admin_client_.get(_url(team), {"action": "team.rename"}).content.decode()
    assert _rows(first) == 50
    assert "Page 1 of 2" in first
    assert "?action=team.rename&amp;page=2" in first
    second = admin_client_.get(_url(team), {"action": "team.rename", "page": 2}).content.decode()
    assert _rows(second) == 10


def test_queries_do_not_grow_with_rows(admin_client_, users, team):
    def count_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert admin_client_.get(_url(team)).status_code == 200
        return len(queries)

    for actor in (users["owner"], users["admin"], users["member"]):
        _event(team, actor, "team.rename")
    count_queries()  # the first visit also stores the current team in the session
    few = count_queries()
    for number in range(20):
        _event(team, users["viewer"] if number % 2 else users["member"], "member.invite")
    assert count_queries() == few


def test_selector_bounds_are_whole_days(users, team):
    day = datetime(2026, 3, 1, 23, 59, tzinfo=UTC)
    _event(team, users["owner"], "team.rename", when=day)
    assert selectors.audit_event_list(team=team, until=day.date()).count() == 1
    assert selectors.audit_event_list(team=team, since=day.date() + timedelta(days=1)).count() == 0


def test_member_refused(member_client, team):
    assert member_client.get(_url(team)).status_code == 403


def test_filters_by_connection_including_removed_ones(admin_client_, users, team, other_team):
    from connections import services as connection_services
    from tests.connections.helpers import make_connection

    production = make_connection(team, name="Production")
    research = make_connection(team, name="Research")
    gone = make_connection(team, name="Old lab")
    theirs = make_connection(other_team, name="Theirs")
    for target in (production, production, research, gone):
        audit_log(team=team, actor=users["admin"], action="connection.test", target=target)
    audit_log(team=other_team, actor=users["outsider"], action="connection.test", target=theirs)
    _event(team, users["owner"], "team.rename")
    gone_id = str(gone.pk)
    connection_services.connection_delete(connection=gone, user=users["owner"])

    page = admin_client_.get(_url(team)).content.decode()
    # Each connection event's target links to the events of that connection.
    assert f'href="?connection={production.pk}"' in page
    assert f'href="?connection={gone_id}"' in page  # removed, still filterable
    assert "Theirs" not in page

    by_connection = admin_client_.get(_url(team), {"connection": production.pk}).content.decode()
    assert "2 events" in by_connection
    assert "Connection: Production" in by_connection
    removed = admin_client_.get(_url(team), {"connection": gone_id}).content.decode()
    assert "2 events" in removed  # its test and its removal
    assert "Connection removed" in removed.split("<tbody>")[1]
    combined = admin_client_.get(
        _url(team), {"connection": production.pk, "actor": users["owner"].pk}
    ).content.decode()
    assert "0 events" in combined


def test_another_teams_connection_is_not_a_choice(admin_client_, users, team, other_team):
    from tests.connections.helpers import make_connection

    theirs = make_connection(other_team, name="Theirs")
    audit_log(team=other_team, actor=users["outsider"], action="connection.test", target=theirs)
    response = admin_client_.get(_url(team), {"connection": theirs.pk})
    assert "Select a valid choice." in response.content.decode()


def test_dates_at_the_ends_of_the_calendar(admin_client_, users, team, settings):
    # Typed by hand into the date fields; east of UTC the first day starts before year 1 in UTC.
    settings.TIME_ZONE = "Pacific/Kiritimati"
    _event(team, users["owner"], "team.rename", when=datetime(2026, 3, 1, 12, tzinfo=UTC))

    response = admin_client_.get(_url(team), {"since": "0001-01-01", "until": "9999-12-31"})

    assert response.status_code == 200
    assert "1 event" in response.content.decode()


def test_a_former_member_can_still_be_filtered_by(admin_client_, users, team):
    _event(team, users["member"], "member.invite")
    _event(team, users["owner"], "team.rename")
    Membership.objects.filter(team=team, user=users["member"]).delete()

    body = admin_client_.get(_url(team)).content.decode()
    assert f'href="?actor={users["member"].pk}"' in body.split("<tbody>")[1]
    response = admin_client_.get(_url(team), {"actor": users["member"].pk})
    assert "1 event" in response.content.decode()
    assert "Member invited" in response.content.decode().split("<tbody>")[1]


def test_details_are_in_words_in_both_languages(admin_client_, users, team):
    changed = {"email": "ana@example.com", "from": "member", "to": "admin"}
    _event(team, users["owner"], "member.role_change", **changed)
    _event(team, users["owner"], "team.rename", via="admin", left=True)

    table = admin_client_.get(_url(team)).content.decode().split("<tbody>")[1]
    assert '<span class="muted">Before:</span> Member' in table
    assert '<span class="muted">After:</span> Admin' in table
    assert '<span class="muted">Done in:</span> the admin site' in table
    assert '<span class="muted">Left by themselves:</span> yes' in table
    assert "from:" not in table and "via:" not in table

    admin_client_.cookies["django_language"] = "es"
    table = admin_client_.get(_url(team), HTTP_ACCEPT_LANGUAGE="es").content.decode()
    table = table.split("<tbody>")[1]
    assert '<span class="muted">Antes:</span> Miembro' in table
    assert '<span class="muted">Hecho en:</span> el sitio de administración' in table
