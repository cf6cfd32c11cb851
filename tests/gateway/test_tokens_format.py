"""A token's format and how its secret is kept: the prefix stored as it is, the secret only as
an HMAC under the pepper, compared in constant time."""

import hashlib
import hmac
import re

import pytest

from gateway import tokens

FORMAT = re.compile(r"tbl_[a-z0-9]{10}_[A-Za-z0-9_-]{43}")


def test_a_new_token_has_the_format_and_a_256_bit_secret():
    new = tokens.generate()
    assert FORMAT.fullmatch(new.value)
    assert len(new.value) == tokens.TOKEN_LENGTH
    prefix, secret = tokens.split(new.value)
    assert prefix == new.prefix
    assert len(secret) == 43  # 32 bytes, URL-safe base64 without padding
    assert new.secret_digest == tokens.digest(secret)
    assert secret not in new.secret_digest and new.value not in new.secret_digest


def test_tokens_differ():
    values = {tokens.generate().value for _ in range(50)}
    prefixes = {tokens.split(v)[0] for v in values}
    assert len(values) == len(prefixes) == 50


def test_the_digest_is_an_hmac_sha256_under_the_pepper(settings):
    settings.TABLERO_GATEWAY_PEPPER = "p" * 40
    expected = hmac.new(b"p" * 40, b"the-secret", hashlib.sha256).hexdigest()
    assert tokens.digest("the-secret") == expected
    assert tokens.digest("the-secret") != hashlib.sha256(b"the-secret").hexdigest()


def test_a_changed_pepper_fails_the_check(settings):
    new = tokens.generate()
    _prefix, secret = tokens.split(new.value)
    assert tokens.matches(secret, new.secret_digest)
    settings.TABLERO_GATEWAY_PEPPER = settings.TABLERO_GATEWAY_PEPPER + "-rotated"
    assert not tokens.matches(secret, new.secret_digest)


def test_a_wrong_secret_fails_the_check():
    new = tokens.generate()
    _prefix, secret = tokens.split(new.value)
    other = secret[:-1] + ("A" if secret[-1] != "A" else "B")
    assert not tokens.matches(other, new.secret_digest)


def test_the_check_compares_in_constant_time(monkeypatch):
    seen = []
    real = hmac.compare_digest

    def spy(a, b):
        seen.append((a, b))
        return real(a, b)

    monkeypatch.setattr(tokens.hmac, "compare_digest", spy)
    new = tokens.generate()
    _prefix, secret = tokens.split(new.value)
    assert tokens.matches(secret, new.secret_digest)
    assert seen == [(new.secret_digest, new.secret_digest)]


@pytest.mark.parametrize(
    "value",
    [
        "",
        "tbl_",
        "sk-test-ok-000000000000abcd",
        "tbl_ABCDEFGHIJ_" + "a" * 43,  # upper-case prefix
        "tbl_abcdefghij-" + "a" * 43,  # wrong separator
        "tbl_abcdefghij_" + "a" * 42,  # short
        "tbl_abcdefghij_" + "a" * 44,  # long
        "tbl_abcdefghij_" + "a" * 42 + "=",
        "tbl_abcdefghij_" + "a" * 42 + "é",
        "Bearer tbl_abcdefghij_" + "a" * 43,
        "xbl_abcdefghij_" + "a" * 43,
    ],
)
def test_anything_else_is_not_a_token(value):
    assert tokens.split(value) is None


def test_after_its_creation_only_the_prefix_is_shown():
    new = tokens.generate()
    shown = tokens.display(new.prefix)
    assert shown == f"tbl_{new.prefix}_…"
    assert tokens.split(new.value)[1] not in shown
