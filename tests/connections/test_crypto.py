"""Keys at rest: the keyring, context binding, rotation, configuration errors, masking."""

import base64

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from connections import crypto
from connections.crypto import DecryptionError, decrypt, encrypt, reencrypt
from provider.secrets import last_four, mask

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
KEY_C = Fernet.generate_key().decode()
CONTEXT = "connections.Connection:7f1c:api_key"
SECRET = "sk-proj-Zx81Lm0Qq9Tt7Rr5Ww3Ee1Yy0Uu2Ii4Oo6Pp8Aa"

# Hypothesis runs many examples inside one test; the settings fixture is function-scoped.
PROPERTY = hypothesis_settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.fixture
def keys(settings):
    settings.TABLERO_ENCRYPTION_KEYS = [KEY_A]
    return settings


def test_round_trip(keys):
    token = encrypt(SECRET, context=CONTEXT)
    assert SECRET not in token
    assert decrypt(token, context=CONTEXT) == SECRET


def test_same_plaintext_gives_different_tokens(keys):
    assert encrypt(SECRET, context=CONTEXT) != encrypt(SECRET, context=CONTEXT)


def test_token_copied_to_another_row_does_not_decrypt(keys):
    token = encrypt(SECRET, context="connections.Connection:1:api_key")
    with pytest.raises(DecryptionError):
        decrypt(token, context="connections.Connection:2:api_key")
    with pytest.raises(DecryptionError):
        decrypt(token, context="connections.Connection:1:admin_key")


@pytest.mark.parametrize("token", ["", "not a token", "gAAAAA", "ünïcode", SECRET])
def test_garbage_raises_never_returns_the_token(keys, token):
    with pytest.raises(DecryptionError) as caught:
        decrypt(token, context=CONTEXT)
    assert SECRET not in str(caught.value)


def test_a_fernet_token_not_in_our_format_fails(keys):
    foreign = Fernet(KEY_A.encode()).encrypt(b"plain secret").decode()
    with pytest.raises(DecryptionError):
        decrypt(foreign, context=CONTEXT)
    wrong_shape = Fernet(KEY_A.encode()).encrypt(b'{"ctx": 1, "val": 2}').decode()
    with pytest.raises(DecryptionError):
        decrypt(wrong_shape, context=CONTEXT)


def test_wrong_key_fails(keys, settings):
    token = encrypt(SECRET, context=CONTEXT)
    settings.TABLERO_ENCRYPTION_KEYS = [KEY_B]
    with pytest.raises(DecryptionError):
        decrypt(token, context=CONTEXT)


def test_independent_of_secret_key(keys, settings):
    token = encrypt(SECRET, context=CONTEXT)
    settings.SECRET_KEY = "another-secret-key-" + "q" * 50
    assert decrypt(token, context=CONTEXT) == SECRET


def test_context_is_required(keys):
    with pytest.raises(ValueError):
        encrypt(SECRET, context="")
    with pytest.raises(TypeError):
        encrypt(b"bytes", context=CONTEXT)  # type: ignore[arg-type]


def test_rotation(settings):
    settings.TABLERO_ENCRYPTION_KEYS = [KEY_A]
    old = encrypt(SECRET, context=CONTEXT)
    assert reencrypt(old, context=CONTEXT) == (old, False)

    settings.TABLERO_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    assert decrypt(old, context=CONTEXT) == SECRET
    new, changed = reencrypt(old, context=CONTEXT)
    assert changed and new != old
    assert reencrypt(new, context=CONTEXT) == (new, False)

    settings.TABLERO_ENCRYPTION_KEYS = [KEY_B]
    assert decrypt(new, context=CONTEXT) == SECRET
    with pytest.raises(DecryptionError):
        decrypt(old, context=CONTEXT)
    with pytest.raises(DecryptionError):
        reencrypt(old, context=CONTEXT)


def test_reencrypt_checks_the_context(settings):
    settings.TABLERO_ENCRYPTION_KEYS = [KEY_A]
    token = encrypt(SECRET, context=CONTEXT)
    settings.TABLERO_ENCRYPTION_KEYS = [KEY_B, KEY_A]
    with pytest.raises(DecryptionError):
        reencrypt(token, context="elsewhere")


def test_keys_from_a_comma_separated_string(settings):
    settings.TABLERO_ENCRYPTION_KEYS = f" {KEY_A} , {KEY_B} "
    token = encrypt(SECRET, context=CONTEXT)
    settings.TABLERO_ENCRYPTION_KEYS = [KEY_A]
    assert decrypt(token, context=CONTEXT) == SECRET


# -- configuration_errors ----------------------------------------------------------------


def test_no_errors_for_good_keys(settings):
    settings.TABLERO_ENCRYPTION_KEYS = [KEY_A, KEY_B]
    assert crypto.configuration_errors() == []


def test_the_test_environment_keys_are_good():
    assert crypto.configuration_errors() == []


@pytest.mark.parametrize("value", [[], "", None, ["  "]])
def test_missing_keys(settings, value):
    settings.TABLERO_ENCRYPTION_KEYS = value
    errors = crypto.configuration_errors()
    assert len(errors) == 1 and "not set" in errors[0]
    with pytest.raises(ImproperlyConfigured):
        encrypt(SECRET, context=CONTEXT)


@pytest.mark.parametrize(
    "bad",
    [
        "short",
        base64.urlsafe_b64encode(b"x" * 31).decode(),  # 31 bytes
        base64.urlsafe_b64encode(b"x" * 33).decode(),  # 33 bytes
        base64.b64encode(b"\xfb" * 32).decode(),  # standard alphabet: '+' and '/'
        KEY_A[:-1] + "!",
        "django-insecure-" + "a" * 40,
    ],
)
def test_malformed_key(settings, bad):
    settings.TABLERO_ENCRYPTION_KEYS = [KEY_A, bad]
    errors = crypto.configuration_errors()
    assert errors == [
        "TABLERO_ENCRYPTION_KEYS entry 2 of 2 is not a Fernet key "
        "(32 bytes in url-safe base64, 44 characters ending in '=')."
    ]
    assert bad not in errors[0]
    with pytest.raises(ImproperlyConfigured) as caught:
        decrypt("x", context=CONTEXT)
    assert bad not in str(caught.value) and KEY_A not in str(caught.value)


def test_duplicate_key(settings):
    settings.TABLERO_ENCRYPTION_KEYS = [KEY_A, KEY_B, KEY_A]
    errors = crypto.configuration_errors()
    assert errors == ["TABLERO_ENCRYPTION_KEYS entry 3 repeats entry 1; list each key once."]
    assert KEY_A not in errors[0]


# -- mask --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "masked"),
    [
        ("sk-test-ok-000000000000abcd", "sk-…abcd"),
        ("sk-proj-Zx81Lm0Qq9Tt7Rr5Ww3Ee1Yy0Uu2Ii4Oo6Pp8Aa", "sk-…p8Aa"),
        ("sk-admin-test-ok-00000adm1", "sk-…adm1"),
        ("0123456789abcdef0123456789abcdef", "…cdef"),  # azure: no prefix
        ("abcdefghijklmnop-qrstuvwxyz", "…wxyz"),  # a dash deep inside is not a prefix
        ("sk-short", "sk-…"),  # too short to spare four characters
        ("", "…"),
    ],
)
def test_mask(secret, masked):
    assert mask(secret) == masked


def test_last_four():
    assert last_four("sk-test-ok-000000000000abcd") == "abcd"
    assert last_four("sk-1234") == ""


# -- properties ----------------------------------------------------------------------------


@PROPERTY
@given(plaintext=st.text(), context=st.text(min_size=1))
def test_round_trip_for_any_text_and_context(keys, plaintext, context):
    token = encrypt(plaintext, context=context)
    assert decrypt(token, context=context) == plaintext


@PROPERTY
@given(plaintext=st.text(), context=st.text(min_size=1), other=st.text(min_size=1))
def test_any_other_context_fails(keys, plaintext, context, other):
    token = encrypt(plaintext, context=context)
    if other != context:
        with pytest.raises(DecryptionError):
            decrypt(token, context=other)


@PROPERTY
@given(plaintext=st.text(), position=st.integers(min_value=0), data=st.data())
def test_any_tampered_token_fails(keys, plaintext, position, data):
    token = encrypt(plaintext, context=CONTEXT)
    raw = bytearray(base64.urlsafe_b64decode(token))
    index = position % len(raw)
    raw[index] ^= data.draw(st.integers(min_value=1, max_value=255))
    tampered = base64.urlsafe_b64encode(bytes(raw)).decode()
    with pytest.raises(DecryptionError):
        decrypt(tampered, context=CONTEXT)


@PROPERTY
@given(plaintext=st.text(), context=st.text(min_size=1))
def test_rotation_for_any_value(settings, plaintext, context):
    settings.TABLERO_ENCRYPTION_KEYS = [KEY_A]
    old = encrypt(plaintext, context=context)
    settings.TABLERO_ENCRYPTION_KEYS = [KEY_C, KEY_A]
    assert decrypt(old, context=context) == plaintext
    new, changed = reencrypt(old, context=context)
    assert changed and new != old
    settings.TABLERO_ENCRYPTION_KEYS = [KEY_C]
    assert decrypt(new, context=context) == plaintext
    with pytest.raises(DecryptionError):
        decrypt(old, context=context)
