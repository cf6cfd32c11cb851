from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from connections import crypto
from connections.models import Connection
from tests.connections.helpers import make_connection, make_unreadable

pytestmark = pytest.mark.django_db

OLD, NEW = Fernet.generate_key().decode(), Fernet.generate_key().decode()
KEY = "sk-test-ok-rotation000000wxyz"
ADMIN_KEY = "sk-admin-test-ok-00000adm1"


def run(name: str, *args) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command(name, *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.fixture
def old_key_connection(team, settings):
    settings.TABLERO_ENCRYPTION_KEYS = [OLD]
    connection = make_connection(team, key=KEY)
    connection.set_admin_key(ADMIN_KEY)
    connection.save()
    settings.TABLERO_ENCRYPTION_KEYS = [NEW, OLD]
    return connection


# --- rotate_encryption_keys -------------------------------------------------------------------


def test_rotation_reencrypts_with_the_first_key(old_key_connection, settings):
    before = Connection.objects.get().updated_at
    out, _ = run("rotate_encryption_keys")

    assert "Re-encrypted: 2" in out
    assert "Already current: 0" in out
    assert "Unreadable: 0" in out
    settings.TABLERO_ENCRYPTION_KEYS = [NEW]  # the old key can go now
    connection = Connection.objects.get()
    assert connection.api_key() == KEY
    assert connection.admin_key() == ADMIN_KEY
    assert connection.updated_at == before


def test_rotation_is_safe_to_run_twice(old_key_connection):
    run("rotate_encryption_keys")
    out, _ = run("rotate_encryption_keys")
    assert "Re-encrypted: 0" in out
    assert "Already current: 2" in out


def test_rotation_leaves_a_key_changed_while_it_runs(old_key_connection, monkeypatch):
    """An admin removes the admin key and replaces the API key between the command's read
    and its write: the removed key must not come back, nor the old key replace the new."""
    real_reencrypt = crypto.reencrypt
    connection = Connection.objects.get()

    def reencrypt_while_an_admin_acts(token, *, context):
        result = real_reencrypt(token, context=context)
        if context.endswith(":api_key"):
            connection.set_admin_key("")
            connection.set_api_key("sk-test-ok-replaced0000meanwhile")
            connection.save()
        return result

    monkeypatch.setattr(crypto, "reencrypt", reencrypt_while_an_admin_acts)
    out, _ = run("rotate_encryption_keys")

    assert "Changed while running (left as they are): 2" in out
    connection = Connection.objects.get()
    assert connection.admin_key_encrypted == ""
    assert connection.api_key() == "sk-test-ok-replaced0000meanwhile"


def test_dry_run_writes_nothing(old_key_connection):
    token = Connection.objects.get().api_key_encrypted
    out, _ = run("rotate_encryption_keys", "--dry-run")
    assert "Would re-encrypt: 2" in out
    assert Connection.objects.get().api_key_encrypted == token


def test_rotation_names_unreadable_rows_and_fails(team):
    good = make_connection(team, name="Good", key=KEY)
    broken = make_unreadable(make_connection(team, name="Broken", key=KEY), other=good)
    out, err = StringIO(), StringIO()

    with pytest.raises(CommandError) as failure:
        call_command("rotate_encryption_keys", stdout=out, stderr=err)

    assert "Unreadable: 1" in out.getvalue()
    assert str(broken.pk) in err.getvalue()
    assert "'Acme'" in err.getvalue() and "'Broken'" in err.getvalue()
    everything = out.getvalue() + err.getvalue() + str(failure.value)
    assert KEY not in everything
    assert good.api_key_encrypted not in everything


# --- check_secrets ----------------------------------------------------------------------------


def test_check_secrets_all_good(team):
    make_connection(team, key=KEY)
    out, _ = run("check_secrets")
    assert "All 1 stored secrets decrypt." in out


def test_check_secrets_names_rows_that_do_not_decrypt(team):
    good = make_connection(team, name="Good", key=KEY)
    broken = make_unreadable(make_connection(team, name="Broken", key=KEY), other=good)
    err = StringIO()

    with pytest.raises(CommandError) as failure:
        call_command("check_secrets", stdout=StringIO(), stderr=err)

    assert str(broken.pk) in err.getvalue()
    assert str(good.pk) not in err.getvalue()
    assert "1 of 2" in str(failure.value)
    assert KEY not in err.getvalue() + str(failure.value)


def test_check_secrets_after_losing_the_key(old_key_connection, settings):
    settings.TABLERO_ENCRYPTION_KEYS = [NEW]
    with pytest.raises(CommandError):
        call_command("check_secrets", stdout=StringIO(), stderr=StringIO())


def test_check_secrets_exit_code(team):
    """From the shell the failure is exit code 1."""
    from django.core.management import ManagementUtility

    good = make_connection(team, name="Good", key=KEY)
    make_unreadable(make_connection(team, name="Broken", key=KEY), other=good)
    with pytest.raises(SystemExit) as exit_info:
        ManagementUtility(["manage.py", "check_secrets"]).execute()
    assert exit_info.value.code == 1
