"""The per-account sign-in limit: guesses spread over many addresses pause the account after
AXES_FAILURE_LIMIT, except for a browser that has signed in to it before (its signed "known
device" cookie), which only its own failures can pause."""

import re
from datetime import timedelta

from axes.models import AccessAttempt
from django.contrib.auth import SESSION_KEY
from django.core import mail
from django.test import Client
from django.urls import reverse

from accounts.throttle import KNOWN_DEVICE_COOKIE
from tests.conftest import PASSWORD

LOGIN = reverse("accounts:login")
WRONG_PASSWORD = "Please enter a correct email address and password"
ACCOUNT_PAUSED = "Too many attempts for this account"


def _sign_in(client, email, password, address):
    return client.post(LOGIN, {"username": email, "password": password}, REMOTE_ADDR=address)


def _guess_from_twenty_addresses(email: str, guesses: int = 80) -> list[int]:
    """A stranger's wrong guesses, 4 from each of 20 addresses, each from a fresh browser."""
    statuses = []
    for guess in range(guesses):
        address = f"203.0.113.{guess % 20 + 1}"
        response = _sign_in(Client(), email, f"guess-{guess}", address)
        assert response.status_code in (200, 429)
        body = response.content.decode()
        if response.status_code == 200:
            assert WRONG_PASSWORD in body  # the password was checked, and was wrong
        else:
            assert ACCOUNT_PAUSED in body
            assert "Try again in 15 minutes." in body
        statuses.append(response.status_code)
    return statuses


def _known_device(owner, address="10.0.0.1") -> Client:
    """The owner's browser, after one successful sign-in and a sign-out."""
    laptop = Client()
    assert _sign_in(laptop, owner.email, PASSWORD, address).status_code == 302
    laptop.post(reverse("accounts:logout"))
    assert SESSION_KEY not in laptop.session
    return laptop


def test_guesses_spread_over_twenty_addresses_are_paused_after_the_account_limit(owner):
    statuses = _guess_from_twenty_addresses(owner.email)

    # Five guesses were checked (the fifth one's answer is the pause); 75 were refused
    # without looking at the password.
    assert statuses[:4] == [200] * 4
    assert statuses[4:] == [429] * 76
    assert AccessAttempt.objects.filter(username=owner.email).count() == 20
    # Even the right password is refused from a browser the account does not know.
    response = _sign_in(Client(), owner.email, PASSWORD, "198.51.100.1")
    assert response.status_code == 429
    assert ACCOUNT_PAUSED in response.content.decode()


def test_the_owner_on_a_known_device_still_signs_in(owner):
    laptop = _known_device(owner)
    _guess_from_twenty_addresses(owner.email)

    # From the address it used before, and from a new one (a café, a phone network).
    for address in ("10.0.0.1", "192.0.2.50"):
        response = _sign_in(laptop, owner.email, PASSWORD, address)
        assert response.status_code == 302
        assert laptop.session[SESSION_KEY] == str(owner.pk)
        laptop.post(reverse("accounts:logout"))


def test_a_strangers_wrong_passwords_never_pause_the_owners_known_device(owner):
    laptop = _known_device(owner, address="10.0.0.1")
    # The stranger even guesses from the owner's own address, in a browser of their own.
    for guess in range(30):
        _sign_in(Client(), owner.email, f"guess-{guess}", "10.0.0.1")
        _sign_in(Client(), owner.email, f"guess-{guess}", f"203.0.113.{guess + 1}")

    response = _sign_in(laptop, owner.email, PASSWORD, "10.0.0.1")
    assert response.status_code == 302
    assert laptop.session[SESSION_KEY] == str(owner.pk)


def test_a_known_device_that_fails_five_times_is_treated_like_any_browser(owner):
    """Whoever holds the owner's browser gets five guesses, not an endless supply."""
    laptop = _known_device(owner, address="10.0.0.1")
    _guess_from_twenty_addresses(owner.email)
    for _attempt in range(5):
        response = _sign_in(laptop, owner.email, "wrong", "10.0.0.1")
        assert response.status_code == 200
        assert WRONG_PASSWORD in response.content.decode()

    paused = _sign_in(laptop, owner.email, PASSWORD, "10.0.0.1")
    assert paused.status_code == 429
    assert ACCOUNT_PAUSED in paused.content.decode()


def test_a_known_device_is_trusted_again_after_a_sign_in(owner):
    laptop = _known_device(owner, address="10.0.0.1")
    for _attempt in range(4):
        _sign_in(laptop, owner.email, "wrong", "10.0.0.1")
    assert _sign_in(laptop, owner.email, PASSWORD, "10.0.0.1").status_code == 302
    laptop.post(reverse("accounts:logout"))
    _guess_from_twenty_addresses(owner.email, guesses=10)
    for _attempt in range(4):
        assert _sign_in(laptop, owner.email, "wrong", "10.0.0.1").status_code == 200
    assert _sign_in(laptop, owner.email, PASSWORD, "10.0.0.1").status_code == 302


def test_the_cookie_knows_only_the_accounts_signed_in_with_it(owner, member):
    """A stranger's own account does not make their browser known to someone else's."""
    strangers_browser = _known_device(member, address="203.0.113.1")
    for guess in range(10):
        response = _sign_in(
            strangers_browser, owner.email, f"guess-{guess}", f"203.0.113.{guess + 1}"
        )
    assert response.status_code == 429
    assert ACCOUNT_PAUSED in response.content.decode()


def test_a_cookie_that_is_not_signed_by_tablero_counts_for_nothing(owner):
    laptop = _known_device(owner)
    value = laptop.cookies[KNOWN_DEVICE_COOKIE].value
    _guess_from_twenty_addresses(owner.email, guesses=10)

    copied_tag = Client()
    copied_tag.cookies[KNOWN_DEVICE_COOKIE] = value.split(":")[0]  # the tag without signature
    assert _sign_in(copied_tag, owner.email, PASSWORD, "10.0.0.1").status_code == 429
    tampered = Client()
    # One character changed (a value that happened to start with "0" was left valid before).
    tampered.cookies[KNOWN_DEVICE_COOKIE] = ("1" if value[0] == "0" else "0") + value[1:]
    assert _sign_in(tampered, owner.email, PASSWORD, "10.0.0.1").status_code == 429


def test_the_known_device_cookie(owner):
    laptop = Client()
    response = _sign_in(laptop, "Owner@Example.com", PASSWORD, "10.0.0.1")
    cookie = response.cookies[KNOWN_DEVICE_COOKIE]
    assert cookie["httponly"] is True
    assert cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == 365 * 24 * 60 * 60
    assert owner.email not in cookie.value  # a keyed digest, not the address


def test_the_pause_ends_after_the_cool_off(owner):
    _guess_from_twenty_addresses(owner.email, guesses=6)
    assert _sign_in(Client(), owner.email, PASSWORD, "198.51.100.1").status_code == 429
    for attempt in AccessAttempt.objects.all():
        attempt.attempt_time -= timedelta(minutes=16)
        attempt.save(update_fields=["attempt_time"])

    response = _sign_in(Client(), owner.email, PASSWORD, "198.51.100.1")
    assert response.status_code == 302


def test_the_pause_is_explained_in_spanish(owner):
    _guess_from_twenty_addresses(owner.email, guesses=5)
    response = Client().post(
        LOGIN,
        {"username": owner.email, "password": "wrong"},
        REMOTE_ADDR="198.51.100.1",
        HTTP_ACCEPT_LANGUAGE="es",
    )
    assert response.status_code == 429
    body = response.content.decode()
    assert "Demasiados intentos para esta cuenta" in body
    assert "Inténtalo de nuevo en 15 minutos." in body


def test_the_emailed_reset_link_makes_the_browser_known(owner, settings):
    settings.TABLERO_SEND_EMAIL = True
    _guess_from_twenty_addresses(owner.email, guesses=5)
    new_phone = Client()
    assert _sign_in(new_phone, owner.email, PASSWORD, "192.0.2.50").status_code == 429

    new_phone.post(reverse("accounts:password_reset"), {"email": owner.email})
    link = re.search(r"http://testserver(/password/reset/\S+/\S+/)", mail.outbox[0].body)[1]
    form_url = new_phone.get(link)["Location"]
    new = "plum-orbit-cascade-77"
    new_phone.post(form_url, {"new_password1": new, "new_password2": new})

    assert _sign_in(new_phone, owner.email, new, "192.0.2.50").status_code == 302
