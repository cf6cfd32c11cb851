"""The connection form in a real browser: the key first, Azure's API version only for Azure."""

from django.urls import reverse
from playwright.sync_api import expect


def test_api_version_follows_the_provider(page, sign_in, console_errors, team, admin_user):
    sign_in(page, admin_user)
    page.goto(reverse("connections:create", args=[team.pk]))

    form = page.locator("main form")
    first = form.locator("input:not([type=hidden]), select").first
    expect(first).to_have_attribute("name", "api_key")
    version = page.get_by_label("API version")
    expect(version).to_be_hidden()
    page.get_by_label("Provider").select_option("azure")
    expect(version).to_be_visible()
    page.get_by_label("Provider").select_option("compatible")
    expect(version).to_be_hidden()
    assert console_errors == []
