"""Browser tests: a real Chromium driven by Playwright against pytest-django's live server.

Fixtures:
- `browser`: one headless Chromium (/usr/bin/chromium) for the tests of this package.
- `new_page(locale="en-US")`: a factory; each call opens a fresh context (own cookies) and
  returns its page, with `base_url` set to the live server, so `page.goto("/login/")` works.
- `page`: `new_page()` in English. `page_es`: `new_page(locale="es-ES")`.
- `console_errors`: console errors and uncaught page errors of every page of the test.
- `sign_in(page, user)`: gives the page's context a signed-in session for `user`.
- `consumer`: runs the tasks pages schedule for later, while the test runs (every page has it).

Every test here is marked `e2e` and runs with a transactional database (the live server reads
what the test writes). Without Chromium the tests are skipped, unless TABLERO_REQUIRE_E2E=1
(CI), which turns the skip into a failure. A failing test leaves a screenshot of each of its
pages in test-artifacts/. While the browser runs, DJANGO_ALLOW_ASYNC_UNSAFE is set (see
`browser`), so test bodies may use the ORM.
"""

import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client

CHROMIUM = Path("/usr/bin/chromium")
MISSING_CHROMIUM = "Chromium not installed (apt-get install chromium); browser tests skipped"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DEFAULT_TIMEOUT_MS = 10_000
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
E2E_DIR = Path(__file__).resolve().parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_DIR in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.e2e)
            if item.get_closest_marker("django_db") is None:
                item.add_marker(pytest.mark.django_db(transaction=True))


_CALL_FAILED = pytest.StashKey[bool]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    report = yield
    if report.when == "call":
        item.stash[_CALL_FAILED] = report.failed
    return report


def _require_chromium() -> None:
    if CHROMIUM.exists():
        return
    if os.environ.get("TABLERO_REQUIRE_E2E") == "1":
        pytest.fail(f"TABLERO_REQUIRE_E2E=1 but {MISSING_CHROMIUM}", pytrace=False)
    pytest.skip(MISSING_CHROMIUM)


@pytest.fixture(scope="package")
def browser():
    """Chromium for the tests of this package only: Playwright's sync API keeps an event loop
    running in the test thread, which other tests (asyncio.run, async_to_sync) must not see."""
    _require_chromium()
    from playwright.sync_api import sync_playwright

    # With that loop running, Django refuses ORM calls from the test thread unless told not to.
    previous = os.environ.get("DJANGO_ALLOW_ASYNC_UNSAFE")
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    try:
        with sync_playwright() as playwright:
            chromium = playwright.chromium.launch(
                executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS
            )
            yield chromium
            chromium.close()
    finally:
        if previous is None:
            os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)
        else:
            os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = previous


@pytest.fixture
def consumer(live_server) -> Iterator[None]:
    """A consumer beside the live server: tasks queued by a page run at once (immediate mode,
    in the server's thread), and the tasks they schedule for later (a run's next check) are
    run when due by this thread, as `manage.py run_huey` would."""
    import threading
    import time

    from django.db import connections
    from huey.contrib.djhuey import HUEY

    stop = threading.Event()

    def work() -> None:
        try:
            while not stop.is_set():
                for task in HUEY.read_schedule():
                    HUEY.execute(task)
                time.sleep(0.2)
        finally:
            connections.close_all()

    thread = threading.Thread(target=work, name="e2e-consumer", daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join(timeout=10)


@pytest.fixture
def console_errors() -> list[str]:
    return []


@pytest.fixture
def new_page(
    request, browser, live_server, transactional_db, consumer, console_errors
) -> Iterator[Callable]:
    contexts = []

    def open_page(locale: str = "en-US"):
        context = browser.new_context(base_url=live_server.url, locale=locale)
        context.set_default_timeout(DEFAULT_TIMEOUT_MS)
        context.set_default_navigation_timeout(DEFAULT_TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        page.on(
            "console",
            lambda message: (
                console_errors.append(f"{message.type}: {message.text}")
                if message.type == "error"
                else None
            ),
        )
        page.on("pageerror", lambda error: console_errors.append(f"pageerror: {error}"))
        return page

    yield open_page

    if request.node.stash.get(_CALL_FAILED, False):
        _save_screenshots(request.node.nodeid, contexts)
    for context in contexts:
        context.close()


def _save_screenshots(nodeid: str, contexts) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", nodeid).strip("_")
    number = 0
    for context in contexts:
        for page in context.pages:
            number += 1
            target = ARTIFACTS / f"{stem}-{number}.png"
            try:
                page.screenshot(path=str(target), full_page=True)
            except Exception as error:  # a crashed page must not hide the test's own failure
                print(f"Could not save a screenshot to {target}: {error}")
            else:
                print(f"Screenshot saved to {target}")


@pytest.fixture
def page(new_page):
    return new_page()


@pytest.fixture
def page_es(new_page):
    return new_page(locale="es-ES")


@pytest.fixture
def sign_in(live_server) -> Callable:
    """Sign `user` in within the page's browser context, without going through the form."""

    def apply(page, user) -> None:
        client = Client()
        client.force_login(user)
        session = client.cookies[settings.SESSION_COOKIE_NAME]
        page.context.add_cookies(
            [
                {
                    "name": settings.SESSION_COOKIE_NAME,
                    "value": session.value,
                    "url": live_server.url,
                    "httpOnly": True,
                    "sameSite": "Lax",
                }
            ]
        )

    return apply
