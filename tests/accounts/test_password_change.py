from django.urls import reverse

from tests.conftest import PASSWORD

URL = reverse("accounts:password_change")
NEW = "plum-orbit-cascade-77"


def test_page(owner_client):
    body = owner_client.get(URL).content.decode()
    assert ">Old password</label>" in body
    assert "Your password must contain at least 8 characters." in body


def test_changes_password_and_stays_signed_in(owner_client, owner):
    response = owner_client.post(
        URL, {"old_password": PASSWORD, "new_password1": NEW, "new_password2": NEW}
    )
    assert response["Location"] == reverse("accounts:password_change_done")
    owner.refresh_from_db()
    assert owner.check_password(NEW)
    done = owner_client.get(response["Location"])
    assert "Your password was changed." in done.content.decode()


def test_wrong_old_password(owner_client, owner):
    response = owner_client.post(
        URL, {"old_password": "nope", "new_password1": NEW, "new_password2": NEW}
    )
    assert response.status_code == 200
    assert "Your old password was entered incorrectly." in response.content.decode()
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_anonymous_redirected(client, db):
    assert client.get(URL)["Location"].startswith(reverse("accounts:login"))
