from connections.checks import check_encryption_keys


def test_no_error_with_good_keys():
    assert check_encryption_keys() == []


def test_missing_keys(settings):
    settings.TABLERO_ENCRYPTION_KEYS = []
    (error,) = check_encryption_keys()
    assert error.id == "connections.E001"
    assert "TABLERO_ENCRYPTION_KEYS" in error.msg
    assert "Fernet.generate_key()" in error.hint


def test_malformed_key_is_named_not_shown(settings):
    settings.TABLERO_ENCRYPTION_KEYS = ["not-a-fernet-key-but-secret-looking"]
    (error,) = check_encryption_keys()
    assert error.id == "connections.E001"
    assert "not-a-fernet-key" not in error.msg + error.hint


def test_registered_with_django(settings):
    from django.core import checks

    settings.TABLERO_ENCRYPTION_KEYS = []
    ids = {message.id for message in checks.run_checks()}
    assert "connections.E001" in ids
