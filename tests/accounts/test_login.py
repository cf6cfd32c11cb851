from django.contrib.auth import SESSION_KEY
from django.test import Client
from django.urls import reverse

from tests.conftest import PASSWORD

LOGIN = reverse("accounts:login")


def _sign_in(client, email, password, address="10.0.0.1"):
    return client.post(LOGIN, {"username": email, "password": password}, REMOTE_ADDR=address)


def test_page_asks_for_email(client, db):
    response = client.get(LOGIN)
    assert response.status_code == 200
    body = response.content.decode()
    assert 'type="email"' in body
    assert ">Email</label>" in body
    assert reverse("accounts:password_reset") in body


def test_signs_in_with_email_any_case(client, owner, team):
    response = _sign_in(client, "Owner@Example.com", PASSWORD)
    assert response.status_code == 302
    assert response["Location"] == reverse("home")
    assert client.session[SESSION_KEY] == str(owner.pk)
    assert client.get(reverse("home"))["Location"] == reverse("dashboard:team_home", args=[team.pk])


def test_follows_next(client, owner, team):
    members = reverse("accounts:members", args=[team.pk])
    response = client.post(LOGIN, {"username": owner.email, "password": PASSWORD, "next": members})
    assert response["Location"] == members


def test_wrong_password_shows_error(client, owner):
    response = _sign_in(client, owner.email, "wrong")
    assert response.status_code == 200
    assert "Please enter a correct email address and password" in response.content.decode()
    assert SESSION_KEY not in client.session


def test_signed_in_user_is_sent_on(owner_client):
    response = owner_client.get(LOGIN)
    assert response.status_code == 302


def test_sign_out_is_post_only(owner_client):
    assert owner_client.get(reverse("accounts:logout")).status_code == 405
    response = owner_client.post(reverse("accounts:logout"))
    assert response["Location"] == LOGIN
    assert SESSION_KEY not in owner_client.session


def _known_browser(owner, address="10.0.0.2"):
    """The owner's browser, which signed in once before (see test_login_throttle.py)."""
    browser = Client()
    assert _sign_in(browser, owner.email, PASSWORD, address=address).status_code == 302
    browser.post(reverse("accounts:logout"))
    return browser


def test_five_failures_pause_the_account_but_not_the_owners_browser(client, owner):
    owners_browser = _known_browser(owner)
    for _attempt in range(4):
        assert _sign_in(client, owner.email, "wrong").status_code == 200
    locked = _sign_in(client, owner.email, "wrong")
    assert locked.status_code == 429
    body = locked.content.decode()
    assert "Too many attempts" in body
    assert "Try again in 15 minutes." in body

    # Even the right password is refused, from that address or another, for now...
    assert _sign_in(client, owner.email, PASSWORD).status_code == 429
    assert _sign_in(Client(), owner.email, PASSWORD, address="10.0.0.3").status_code == 429
    assert SESSION_KEY not in client.session

    # ...while the owner still signs in from their browser: a stranger cannot lock them out.
    response = _sign_in(owners_browser, owner.email, PASSWORD, address="10.0.0.1")
    assert response.status_code == 302
    assert owners_browser.session[SESSION_KEY] == str(owner.pk)


def test_lockout_is_per_user(client, owner, member):
    for _attempt in range(5):
        _sign_in(client, owner.email, "wrong")
    response = _sign_in(client, member.email, PASSWORD)
    assert response.status_code == 302


def test_capitalisation_does_not_buy_more_attempts(client, owner):
    for variant in [
        "owner@example.com",
        "Owner@example.com",
        "OWNER@example.com",
        "oWner@example.com",
    ]:
        _sign_in(client, variant, "wrong")
    assert _sign_in(client, "owner@EXAMPLE.com", "wrong").status_code == 429


def _sign_in_via_proxy(client, email, password, forwarded_for):
    # Behind one reverse proxy every request arrives from the proxy's own address.
    return client.post(
        LOGIN,
        {"username": email, "password": password},
        REMOTE_ADDR="127.0.0.1",
        HTTP_X_FORWARDED_FOR=forwarded_for,
    )


def test_behind_a_proxy_a_stranger_cannot_lock_a_user_out(client, owner, settings):
    settings.TABLERO_PROXY_COUNT = 1
    owners_browser = Client()
    signed_in = _sign_in_via_proxy(owners_browser, owner.email, PASSWORD, "198.51.100.7")
    assert signed_in.status_code == 302
    owners_browser.post(reverse("accounts:logout"))
    # The stranger even claims the owner's address; the proxy appends the real one.
    for _attempt in range(5):
        locked = _sign_in_via_proxy(client, owner.email, "wrong", "198.51.100.7, 203.0.113.9")
    assert locked.status_code == 429

    response = _sign_in_via_proxy(owners_browser, owner.email, PASSWORD, "198.51.100.7")
    assert response.status_code == 302


def test_without_a_proxy_x_forwarded_for_buys_no_attempts(client, owner):
    for attempt in range(5):
        response = client.post(
            LOGIN,
            {"username": owner.email, "password": "wrong"},
            REMOTE_ADDR="10.0.0.1",
            HTTP_X_FORWARDED_FOR=f"192.0.2.{attempt}",
        )
    assert response.status_code == 429


def test_admin_site_sign_in_is_throttled_the_same_way(client, owner):
    owner.is_staff = True
    owner.save(update_fields=["is_staff"])
    admin_login = reverse("admin:login")
    for _attempt in range(5):
        response = client.post(
            admin_login, {"username": owner.email, "password": "wrong"}, REMOTE_ADDR="10.0.0.1"
        )
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()
    response = client.post(
        admin_login, {"username": owner.email, "password": PASSWORD}, REMOTE_ADDR="10.0.0.1"
    )
    assert response.status_code == 429
    assert SESSION_KEY not in client.session


def test_next_pointing_at_the_sign_in_page_does_not_loop(owner_client, client, owner):
    for next_url in [LOGIN, f"{LOGIN}?next={LOGIN}", f"http://testserver{LOGIN}"]:
        response = owner_client.get(LOGIN, {"next": next_url})
        assert response.status_code == 302
        assert response["Location"] == reverse("home")

    response = client.post(f"{LOGIN}?next={LOGIN}", {"username": owner.email, "password": PASSWORD})
    assert response["Location"] == reverse("home")


def test_next_to_another_host_is_ignored(client, owner):
    for next_url in ["https://evil.example", "//evil.example", "/\\evil.example"]:
        response = client.post(
            LOGIN, {"username": owner.email, "password": PASSWORD, "next": next_url}
        )
        assert response["Location"] == reverse("home")
        client.logout()


def test_an_overlong_address_is_a_form_error(client, owner):
    response = client.post(LOGIN, {"username": "a" * 1_000_000, "password": "x"})
    assert response.status_code == 200
    assert "Ensure this value has at most 254 characters" in response.content.decode()
