"""The getting-started checklist on the team home (dashboard.checklist)."""

import pytest
from django.db.models import Exists
from django.urls import reverse
from django.utils import timezone

from accounts.models import Membership, Role
from dashboard.models import ChecklistDismissal
from lib import onboarding
from tests.assistants.helpers import make_assistant, make_run
from tests.connections.helpers import make_connection
from tests.gateway.tokenhelpers import make_token


def _home(team) -> str:
    return reverse("dashboard:team_home", args=[team.pk])


def _checklist(client, team) -> str:
    body = client.get(_home(team)).content.decode()
    if 'id="checklist"' not in body:
        return ""
    return body.split('id="checklist"')[1].split("</section>")[0]


def _done(section: str) -> list[str]:
    items = section.split("<li")[1:]
    return [item.split("<strong>")[1].split("</strong>")[0] for item in items if "is-done" in item]


def test_a_new_team_shows_every_step_undone(owner_client, team):
    section = _checklist(owner_client, team)
    assert "Getting started" in section
    assert "0 of 6 done" in section
    for title in (
        "Add a connection",
        "See its models",
        "Create an assistant",
        "Run it",
        "Invite someone",
        "Create an API token",
    ):
        assert title in section
    assert reverse("connections:create", args=[team.pk]) in section
    assert reverse("accounts:member_invite", args=[team.pk]) in section
    assert _done(section) == []


def test_steps_are_ticked_as_the_team_does_them(owner_client, team, owner):
    connection = make_connection(team)
    section = _checklist(owner_client, team)
    assert "1 of 6 done" in section
    assert _done(section) == ["Add a connection"]

    connection.models_cached_at = timezone.now()
    connection.save(update_fields=["models_cached_at"])
    assistant = make_assistant(team, connection)
    section = _checklist(owner_client, team)
    assert "3 of 6 done" in section

    make_run(assistant)
    section = _checklist(owner_client, team)
    assert "4 of 6 done" in section
    assert "Invite someone" not in "".join(_done(section))

    make_token(team, owner, connection=connection)
    section = _checklist(owner_client, team)
    assert "5 of 6 done" in section
    assert "Create an API token" in _done(section)


def test_hidden_once_everything_is_done(owner_client, team, owner, member):
    connection = make_connection(team)
    connection.models_cached_at = timezone.now()
    connection.save(update_fields=["models_cached_at"])
    make_run(make_assistant(team, connection))
    make_token(team, owner, connection=connection)
    assert _checklist(owner_client, team) == ""


def test_a_registered_step_joins_the_list(owner_client, team, member):
    # How an app beside the dashboard adds a step (the gateway's "Create an API token") without
    # the dashboard importing it.
    connection = make_connection(team)
    connection.models_cached_at = timezone.now()
    connection.save(update_fields=["models_cached_at"])
    make_run(make_assistant(team, connection))
    onboarding.register(
        onboarding.Step(
            key="example",
            order=70,
            title="Try the example",
            hint="Something to do.",
            min_role="member",
            done=lambda team: Exists(Membership.objects.filter(team=team, role="nobody")),
            url=lambda team: "/tokens/",
        )
    )
    try:
        section = _checklist(owner_client, team)
    finally:
        onboarding.unregister("example")
    assert "5 of 7 done" in section
    assert 'href="/tokens/"' in section


def test_a_viewer_is_told_who_does_the_steps_they_cannot(viewer_client, team):
    section = _checklist(viewer_client, team)
    assert "An admin of the team does this." in section
    assert "A member of the team does this." in section
    assert reverse("connections:create", args=[team.pk]) not in section
    assert reverse("dashboard:checklist_dismiss", args=[team.pk]) not in section
    # Seeing models is for everyone.
    assert reverse("connections:list", args=[team.pk]) in section


@pytest.mark.parametrize("role_client", ["owner_client", "admin_client_"])
def test_an_admin_dismisses_it_for_the_whole_team(request, role_client, team, member):
    client = request.getfixturevalue(role_client)
    url = reverse("dashboard:checklist_dismiss", args=[team.pk])
    assert url in _checklist(client, team)

    response = client.post(url, follow=True)

    assert response.redirect_chain[-1][0] == _home(team)
    assert "The getting-started checklist is hidden for the whole team." in (
        response.content.decode()
    )
    assert 'id="checklist"' not in response.content.decode()
    assert ChecklistDismissal.objects.filter(team=team).count() == 1
    # Again: nothing changes, still one row.
    client.post(url)
    assert ChecklistDismissal.objects.filter(team=team).count() == 1
    member_client = request.getfixturevalue("member_client")
    assert _checklist(member_client, team) == ""


def test_dismissing_takes_post_only(owner_client, team):
    url = reverse("dashboard:checklist_dismiss", args=[team.pk])
    assert owner_client.get(url).status_code == 405
    assert not ChecklistDismissal.objects.exists()


def test_one_query_whatever_the_steps(owner_client, team, django_assert_num_queries):
    from accounts.access import TeamAccess
    from dashboard.checklist import team_checklist

    access = TeamAccess(team=team, membership=Membership.objects.get(team=team, role=Role.OWNER))
    with django_assert_num_queries(1):
        checklist = team_checklist(access=access)
    assert checklist is not None and len(checklist.items) == 6
