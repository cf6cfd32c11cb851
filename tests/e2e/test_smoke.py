"""The sign-in page renders in a real Chromium under the Content Security Policy."""

from django.urls import reverse


def test_sign_in_page_renders_without_console_errors(page, console_errors):
    response = page.goto(reverse("accounts:login"))

    assert response is not None and response.status == 200
    assert "Tablero" in page.title()
    assert page.locator("input[type=password]").count() == 1
    assert page.locator("button[type=submit], input[type=submit]").count() >= 1
    page.wait_for_load_state("load")
    assert console_errors == []


def test_content_security_policy_lets_htmx_and_tablero_js_load(page, console_errors):
    response = page.goto(reverse("accounts:login"))
    page.wait_for_load_state("load")

    policy = response.headers.get("content-security-policy", "")
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    # htmx.min.js defines window.htmx; tablero.js marks the document as scripted.
    assert page.evaluate("typeof window.htmx") == "object"
    page.wait_for_function("document.documentElement.classList.contains('js')")
    violations = [error for error in console_errors if "Content Security Policy" in error]
    assert violations == []
    assert console_errors == []
