import re

import pytest
from django.core import mail
from django.urls import reverse

NEW = "plum-orbit-cascade-77"


@pytest.fixture(autouse=True)
def _mail_configured(settings):
    settings.TABLERO_SEND_EMAIL = True


def test_page(client, db):
    body = client.get(reverse("accounts:password_reset")).content.decode()
    assert "Reset your password" in body
    assert 'type="email"' in body


def test_reset_by_email(client, owner):
    response = client.post(reverse("accounts:password_reset"), {"email": "OWNER@example.com"})
    assert response["Location"] == reverse("accounts:password_reset_done")
    assert "Check your email" in client.get(response["Location"]).content.decode()

    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.to == ["owner@example.com"]
    assert message.subject == "Reset your Tablero password"
    link = re.search(r"http://testserver(/password/reset/\S+/\S+/)", message.body).group(1)

    # Django swaps the token for a session value and redirects to a neutral URL.
    form_url = client.get(link)["Location"]
    page = client.get(form_url)
    assert ">New password</label>" in page.content.decode()
    done = client.post(form_url, {"new_password1": NEW, "new_password2": NEW})
    assert done["Location"] == reverse("accounts:password_reset_complete")
    assert "Your new password is set." in client.get(done["Location"]).content.decode()
    owner.refresh_from_db()
    assert owner.check_password(NEW)

    # The link works once.
    again = client.get(link, follow=True)
    assert "This password reset link is not valid" in again.content.decode()


def test_unknown_address_sends_nothing_and_says_the_same(client, owner):
    response = client.post(reverse("accounts:password_reset"), {"email": "nobody@example.com"})
    assert response["Location"] == reverse("accounts:password_reset_done")
    assert mail.outbox == []


def test_without_a_mail_server_the_link_is_never_sent(client, owner, settings):
    settings.TABLERO_SEND_EMAIL = False
    page = client.get(reverse("accounts:password_reset"))
    assert "This Tablero cannot send email" in page.content.decode()
    assert 'name="email"' not in page.content.decode()
    client.post(reverse("accounts:password_reset"), {"email": owner.email})
    assert mail.outbox == []


def test_a_mailbox_cannot_be_flooded(client, owner):
    for _ in range(5):
        response = client.post(reverse("accounts:password_reset"), {"email": owner.email})
        # Past the limit the page says the same as before, and no more mail goes out.
        assert response["Location"] == reverse("accounts:password_reset_done")
    assert len(mail.outbox) == 3


def test_one_address_cannot_ask_without_end(client, owner, member):
    for number in range(10):
        client.post(reverse("accounts:password_reset"), {"email": f"nobody{number}@example.com"})

    response = client.post(reverse("accounts:password_reset"), {"email": member.email})

    assert response.status_code == 200
    assert "Too many password reset requests from your address" in response.content.decode()
    assert mail.outbox == []
    other_address = client.post(
        reverse("accounts:password_reset"), {"email": member.email}, REMOTE_ADDR="192.0.2.9"
    )
    assert other_address["Location"] == reverse("accounts:password_reset_done")
    assert len(mail.outbox) == 1
