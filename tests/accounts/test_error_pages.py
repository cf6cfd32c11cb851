from django.template import loader
from django.test import Client, RequestFactory
from django.urls import reverse
from django.views.defaults import server_error


def test_404_for_anonymous(client, db):
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Page not found" in body
    assert "auth-shell" in body


def test_404_for_signed_in_keeps_the_frame(owner_client, team):
    response = owner_client.get("/no-such-page/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Page not found" in body
    assert 'class="sidebar"' in body
    assert "owner@example.com" in body


def test_403_explains(viewer_client, team):
    response = viewer_client.get(reverse("accounts:audit", args=[team.pk]))
    assert response.status_code == 403
    body = response.content.decode()
    assert "You may not do this" in body
    assert 'class="sidebar"' in body


def test_500_is_standalone(rf: RequestFactory):
    response = server_error(rf.get("/"))
    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong" in body
    assert "/static/css/tablero.css" in body


def test_500_needs_no_context():
    # Rendered with nothing at all: no request, no user, no context processors.
    body = loader.get_template("500.html").render()
    assert "Something went wrong" in body


def test_csrf_failure_is_our_own_page(owner):
    # A form from a page that went stale (say, after signing in in another tab).
    client = Client(enforce_csrf_checks=True)
    response = client.post(reverse("accounts:login"), {"username": owner.email, "password": "x"})
    assert response.status_code == 403
    body = response.content.decode()
    assert "This form has expired" in body
    assert "/static/css/tablero.css" in body
    assert "<style" not in body  # Django's own page styles itself inline, which the CSP blocks


def test_400_is_standalone(rf: RequestFactory):
    # A request with a host Tablero does not serve: Django answers 400 with our page.
    response = Client(HTTP_HOST="evil.example").get("/")
    assert response.status_code == 400
    body = response.content.decode()
    assert "Tablero could not read this request" in body
    assert "/static/css/tablero.css" in body
    assert "<style" not in body


def test_400_needs_no_context():
    body = loader.get_template("400.html").render()
    assert "Tablero could not read this request" in body
