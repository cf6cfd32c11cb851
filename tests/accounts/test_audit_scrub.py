"""Secrets never reach the audit log: not in nested details, not as a key pasted into a value."""

import csv
import io

from django.urls import reverse

from accounts.models import AuditEvent
from accounts.services import audit_log

# Fake keys, shaped like the real ones (never a real key in a test).
PROJECT_KEY = "sk-proj-" + "Fake0Project1Key2Value3" + "wxyz"
ADMIN_KEY = "sk-admin-" + "Fake0Admin1Key2Value3" + "adm4"
SERVICE_KEY = "sk-svcacct-" + "Fake0Service1Key2Value" + "svc9"
PLAIN_KEY = "sk-" + "Fake0Plain1Key2Value3Abc" + "abcd"
ALL_KEYS = (PROJECT_KEY, ADMIN_KEY, SERVICE_KEY, PLAIN_KEY)
SECRET_VALUES = ("hunter2-password", "bearer-token-value", "the-secret-value")

NESTED = {
    "name": "Production",
    "api_key_last4": "wxyz",
    "Admin_Key": PLAIN_KEY,
    "request": {
        "headers": {"Authorization": "Bearer bearer-token-value", "Accept": "application/json"},
        "body": [{"password": "hunter2-password", "user": "ana"}, {"API_KEY": PROJECT_KEY}],
        "admin_key_last4": "adm4",
    },
    "changes": [{"field": "notes", "to": f"pasted {ADMIN_KEY} by mistake"}, ("Secret", 1)],
    "attempts": [[{"clientSecret": "the-secret-value", "tries": 2}]],
    "message": f"Provider said: invalid key {SERVICE_KEY}.",
    "keys": [PLAIN_KEY],
    "labels": ["task-0123456789abcdefghijklmn", "short sk-abc is not a key"],
    "count": 3,
    "ok": True,
    "nothing": None,
}
SCRUBBED = {
    "name": "Production",
    "api_key_last4": "wxyz",
    "request": {
        "headers": {"Accept": "application/json"},
        "body": [{"user": "ana"}, {}],
        "admin_key_last4": "adm4",
    },
    "changes": [{"field": "notes", "to": "pasted sk-…adm4 by mistake"}, ["Secret", 1]],
    "attempts": [[{"tries": 2}]],
    "message": "Provider said: invalid key sk-…svc9.",
    "labels": ["task-0123456789abcdefghijklmn", "short sk-abc is not a key"],
    "count": 3,
    "ok": True,
    "nothing": None,
}


def _assert_no_secret(text: str) -> None:
    leaked = [s for s in (*ALL_KEYS, *SECRET_VALUES) if s in text]
    assert not leaked, f"{len(leaked)} secret value(s) shown"


def test_nested_secret_keys_and_pasted_keys_are_not_stored(users, team):
    event = audit_log(team=team, actor=users["owner"], action="connection.update", data=NESTED)
    event.refresh_from_db()
    assert event.data == SCRUBBED
    _assert_no_secret(repr(event.data))


def test_every_provider_key_shape_is_masked_to_its_last_four(users, team):
    data = {"notes": [f"{key} and again {key}" for key in ALL_KEYS]}
    event = audit_log(team=team, actor=users["owner"], action="connection.update", data=data)
    assert event.data == {
        "notes": [
            "sk-…wxyz and again sk-…wxyz",
            "sk-…adm4 and again sk-…adm4",
            "sk-…svc9 and again sk-…svc9",
            "sk-…abcd and again sk-…abcd",
        ]
    }


def test_the_audit_page_and_export_show_only_masked_keys(admin_client_, users, team):
    audit_log(team=team, actor=users["owner"], action="connection.update", data=NESTED)

    page = admin_client_.get(reverse("accounts:audit", args=[team.pk])).content.decode()
    _assert_no_secret(page)
    assert "sk-…svc9" in page
    assert "Production" in page

    export = admin_client_.get(reverse("accounts:audit_export", args=[team.pk]))
    content = b"".join(export.streaming_content).decode()
    _assert_no_secret(content)
    details = list(csv.reader(io.StringIO(content)))[1][5]
    assert "sk-…adm4" in details
    assert '"api_key_last4": "wxyz"' in details


def test_events_written_before_the_fix_are_scrubbed_when_shown(admin_client_, users, team):
    # Stored as is (bypassing audit_log), as events recorded by an older version may be.
    AuditEvent.objects.create(
        team=team, actor=users["owner"], actor_email="owner@example.com", action="x.y", data=NESTED
    )

    page = admin_client_.get(reverse("accounts:audit", args=[team.pk])).content.decode()
    _assert_no_secret(page)
    export = admin_client_.get(reverse("accounts:audit_export", args=[team.pk]))
    content = b"".join(export.streaming_content).decode()
    _assert_no_secret(content)
    assert "Provider said: invalid key sk-…svc9." in content
