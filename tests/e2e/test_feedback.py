"""Feedback in a real browser: a button that waits on the provider says so, and Copy says
"Copied" (in English and Spanish)."""

import re

from django.urls import reverse
from playwright.sync_api import expect

from tests.assistants.helpers import fake_connection


def test_test_now_shows_it_is_busy(page, sign_in, team, admin_user, fake_upstream):
    connection = fake_connection(team, fake_upstream)
    sign_in(page, admin_user)
    page.goto(reverse("connections:detail", args=[team.pk, connection.pk]))
    # The page's own handler (on the document) runs first; this one, on the window, then keeps
    # the form from leaving, so the page can be read as it is while the answer is awaited.
    page.evaluate("window.addEventListener('submit', (event) => event.preventDefault())")

    page.get_by_role("button", name="Test now").click()

    busy = page.locator("button[aria-busy=true]")
    expect(busy).to_have_text("Checking…")
    expect(busy).to_have_class(re.compile(r"\bis-busy\b"))
    # Coming back to the page (the browser's Back button) shows it as it was: not busy.
    page.evaluate("window.dispatchEvent(new PageTransitionEvent('pageshow'))")
    expect(page.get_by_role("button", name="Test now")).not_to_have_attribute("aria-busy", "true")


def test_copy_says_copied(new_page, sign_in, team, member, fake_upstream):
    fake_connection(team, fake_upstream)
    for locale, create, copy, copied in (
        ("en-US", "Create token", "Copy", "Copied"),
        ("es-ES", "Crear token", "Copiar", "Copiado"),
    ):
        page = new_page(locale=locale)
        page.context.grant_permissions(["clipboard-read", "clipboard-write"])
        sign_in(page, member)
        page.goto(reverse("gateway:token_create", args=[team.pk]))
        page.locator("input[name=name]").fill(f"Notebook {locale}")
        page.get_by_role("button", name=create).click()

        button = page.locator("[data-copy=new-token]")
        expect(button).to_have_text(copy)
        button.click()
        expect(button).to_have_text(copied)
        value = page.locator("#new-token")
        copied_text = page.evaluate("navigator.clipboard.readText()")
        assert copied_text.strip() == (value.input_value() or value.inner_text()).strip()
