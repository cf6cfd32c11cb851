"""Every page, as each role, at a desktop and a phone width, in English and Spanish.

One seeded team (the demo's: a connection in every state, assistants, runs in every state)
and one browser. Each page is loaded once per role and language, then checked at 1366 px,
390 px and 360 px for:
- sideways scrolling (the document wider than the window);
- a button whose label wraps onto a second line;
- console errors and uncaught page errors;
- serious or critical accessibility violations found by axe-core (axe-playwright-python,
  pinned in pyproject.toml, ships axe-core's JavaScript): every visit at 390 px, the owner's
  at 1366 px too (axe is most of the time the sweep takes).
A page that answers 500 fails too; 403 and 404 are pages like any other (a viewer meets them).

Screenshots of every page as the owner (1366 and 390 px, both languages), and of any visit
that failed, go to test-artifacts/sweep/; test-artifacts/sweep/report.txt lists each visit. To add a
page, add one line to PAGES (or ANONYMOUS_PAGES for pages seen signed out). While fixing
something, TABLERO_SWEEP_ONLY="<regex>" sweeps only the visits whose "role language page"
matches (TABLERO_SWEEP_ONLY="owner es tokens").
"""

import datetime
import json
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path

import axe_playwright_python
import pytest
from django.core.management import call_command
from django.urls import reverse
from playwright.sync_api import expect

from accounts import services as account_services
from accounts.models import Role, Team, User
from accounts.tokens import invitation_token
from assistants.models import Run, RunStatus
from connections.models import Connection, Health
from dashboard.management.commands import demo_seed
from gateway import price_services
from gateway import services as gateway_services
from tests.e2e.conftest import ARTIFACTS

SWEEP = ARTIFACTS / "sweep"
# axe-core's own JavaScript, as the pinned axe-playwright-python ships it (axe 4.12.1, MPL-2.0).
AXE_JS = Path(axe_playwright_python.__file__).with_name("axe.min.js")
# A desktop, a common phone, and the narrowest phone Tablero is laid out for (360 px: only
# measured, neither axe nor screenshots, which change little from 390).
WIDTHS = (1366, 390, 360)
CHECKED_WIDTHS = (1366, 390)
HEIGHT = 900
LANGUAGES = {"en": "en-US", "es": "es-ES"}
ROLES = (Role.VIEWER, Role.MEMBER, Role.ADMIN, Role.OWNER)
# Every page of every role is screenshotted for this role; the others only when they fail.
SCREENSHOT_ROLE = Role.OWNER
# axe takes most of the sweep's time: it checks every visit at the phone width (where tables
# scroll and menus fold), and the owner's (the widest pages) at both widths.
AXE_WIDTH = 390
# Impacts that fail the sweep (axe also reports "minor" and "moderate").
FAILING_IMPACTS = {"serious", "critical"}
OK_STATUSES = {200, 403, 404}

# name, URL name, arguments (keys of the seeded objects, see `_seed`). One line per page.
PAGES: list[tuple[str, str, tuple[str, ...]]] = [
    ("team-home", "dashboard:team_home", ("team",)),
    ("connections", "connections:list", ("team",)),
    ("connection", "connections:detail", ("team", "connection")),
    ("connection-broken", "connections:detail", ("team", "broken")),
    ("connection-lost-key", "connections:detail", ("team", "unreadable")),
    ("connection-new", "connections:create", ("team",)),
    ("connection-edit", "connections:edit", ("team", "connection")),
    ("connection-replace-key", "connections:replace_key", ("team", "connection")),
    ("connection-admin-key", "connections:admin_key", ("team", "connection")),
    ("connection-delete", "connections:delete", ("team", "connection")),
    ("models", "connections:models", ("team", "connection")),
    ("model", "connections:model_detail", ("team", "connection", "model")),
    ("costs", "connections:costs", ("team", "connection")),
    ("assistants", "assistants:list", ("team",)),
    ("assistant", "assistants:detail", ("team", "assistant")),
    ("assistant-new", "assistants:create", ("team",)),
    ("assistant-edit", "assistants:edit", ("team", "assistant")),
    ("assistant-delete", "assistants:delete", ("team", "assistant")),
    ("runs", "assistants:runs", ("team",)),
    ("run-lookup", "assistants:run_lookup", ("team",)),
    ("run-completed", "assistants:run_detail", ("team", "run")),
    ("run-failed", "assistants:run_detail", ("team", "failed_run")),
    ("run-cancel", "assistants:run_cancel", ("team", "active_run")),
    ("usage", "assistants:usage", ("team",)),
    ("members", "accounts:members", ("team",)),
    ("audit", "accounts:audit", ("team",)),
    ("team-settings", "accounts:team_settings", ("team",)),
    ("team-delete", "accounts:team_delete", ("team",)),
    ("tokens", "gateway:tokens", ("team",)),
    ("token-new", "gateway:token_create", ("team",)),
    ("token-revoke", "gateway:token_revoke", ("team", "token")),
    ("gateway-usage", "gateway_usage:summary", ("team",)),
    ("prices", "gateway_usage:prices", ("team",)),
    ("price-new", "gateway_usage:price_create", ("team",)),
    ("price-edit", "gateway_usage:price_edit", ("team", "price")),
    ("price-delete", "gateway_usage:price_delete", ("team", "price")),
    ("limits", "gateway_limits:overview", ("team",)),
    ("limits-default", "gateway_limits:default", ("team",)),
    ("token-limits", "gateway_limits:token", ("team", "token")),
    ("spend", "dashboard:spend", ("team",)),
    ("notifications", "dashboard:notifications", ("team",)),
    ("alerts", "dashboard:alert_settings", ("team",)),
    ("team-new", "accounts:team_create", ()),
    ("password-change", "accounts:password_change", ()),
    ("password-changed", "accounts:password_change_done", ()),
    ("admin", "admin:index", ()),
    ("not-found", "", ("/teams/00000000-0000-0000-0000-000000000000/",)),
]
ANONYMOUS_PAGES: list[tuple[str, str, tuple[str, ...]]] = [
    ("sign-in", "accounts:login", ()),
    ("password-reset", "accounts:password_reset", ()),
    ("password-reset-sent", "accounts:password_reset_done", ()),
    ("password-reset-complete", "accounts:password_reset_complete", ()),
    ("invitation", "accounts:invitation_accept", ("invitation",)),
    ("not-found", "", ("/no-such-page/",)),
]

# Measures the page in the browser: sideways overflow (and the widest culprits), and buttons
# whose label runs onto a second line.
MEASURE = """() => {
  const width = window.innerWidth;
  const overflow = document.documentElement.scrollWidth - width;
  const culprits = [];
  if (overflow > 0) {
    for (const el of document.querySelectorAll("body *")) {
      const box = el.getBoundingClientRect();
      if (box.right > width + 1 && box.width > 0 && !el.closest("[hidden]") &&
          !el.parentElement.closest(".table-wrap, pre")) {
        const name = el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
          (el.classList.length ? "." + [...el.classList].join(".") : "");
        culprits.push(name + " (right " + Math.round(box.right) + ")");
      }
    }
  }
  const wrapped = [];
  for (const el of document.querySelectorAll("button, .button, input[type=submit]")) {
    const box = el.getBoundingClientRect();
    // .button-wrap: a label with a name someone typed, which may need two lines on a phone.
    if (!box.width || el.closest(".menu-panel, [hidden]") || el.matches(".button-wrap")) continue;
    const style = getComputedStyle(el);
    const line = parseFloat(style.lineHeight) || parseFloat(style.fontSize) * 1.5;
    const inner = box.height - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom)
      - parseFloat(style.borderTopWidth) - parseFloat(style.borderBottomWidth);
    if (inner > line * 1.6) wrapped.push((el.innerText || el.value || "").trim().slice(0, 60));
  }
  return {overflow, culprits: culprits.slice(0, 6), wrapped};
}"""


NEXT_FRAMES = "() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))"
# Runs axe-core (loaded by the context's init script) on the page as it is laid out now, and
# returns only the violations of the given impacts, in a few words each.
RUN_AXE = """async (impacts) => {
  const results = await axe.run(document, {resultTypes: ["violations"]});
  return results.violations.filter((v) => impacts.includes(v.impact)).map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    targets: v.nodes.slice(0, 3).map((node) => node.target.join(" ")),
  }));
}"""


@dataclass
class Visit:
    who: str
    language: str
    page: str
    url: str
    problems: list[str] = field(default_factory=list)


def _seed(fake_upstream) -> tuple[dict[str, object], dict[Role, User]]:
    """The demo team, plus one of each thing a page shows: a token, a price, an invitation."""
    call_command("demo_seed", "--upstream", fake_upstream.base_url, "--wait", "5")
    team = Team.objects.get(name=demo_seed.TEAM_NAME)
    users = {role: User.objects.get(email=f"{role.value}@demo.test") for role in ROLES}
    connection = Connection.objects.get(team=team, name="Production")
    models = connection.models_cache or []
    if not models:
        from connections import services

        services.models_refresh(connection=connection, user=users[Role.ADMIN])
        connection.refresh_from_db()
        models = connection.models_cache
    _token, _value = gateway_services.token_create(
        team=team,
        connection=connection,
        name="CI pipeline",
        created_by=users[Role.ADMIN],
        owner=users[Role.ADMIN],
        scopes=gateway_services.scopes_for_role(Role.ADMIN),
    )
    price = price_services.model_price_create(
        team=team,
        actor=users[Role.ADMIN],
        model="gpt-4o",
        currency="USD",
        input_per_million=Decimal("2.50"),
        cached_input_per_million=Decimal("1.25"),
        output_per_million=Decimal("10.00"),
        effective_from=datetime.date(2026, 1, 1),
    )
    invitation = account_services.invitation_create(
        team=team,
        email="nuevo@demo.test",
        role=Role.MEMBER,
        invited_by=users[Role.OWNER],
        actor_role=Role.OWNER,
    )
    runs = Run.objects.filter(team=team)
    objects = {
        "team": team.pk,
        "connection": connection.pk,
        "broken": Connection.objects.get(team=team, health=Health.INVALID_KEY).pk,
        "unreadable": Connection.objects.get(team=team, name=demo_seed.UNREADABLE_NAME).pk,
        "model": models[0]["id"],
        "assistant": connection.assistants.first().pk,
        # The runs move on while the sweep runs; any run of the kind will do.
        "run": (runs.filter(status=RunStatus.COMPLETED).first() or runs.first()).pk,
        "failed_run": (runs.exclude(last_error_kind="").first() or runs.last()).pk,
        "active_run": (runs.filter(completed_at__isnull=True).first() or runs.first()).pk,
        "token": _token.pk,
        "price": price.pk,
        "invitation": invitation_token(invitation.pk),
    }
    return objects, users


def _url(url_name: str, args: tuple[str, ...], objects: dict[str, object]) -> str:
    if not url_name:
        return args[0]
    return reverse(url_name, args=[objects[name] for name in args])


TIMES: dict[str, float] = {}


def _timed(step: str, started: float) -> None:
    TIMES[step] = TIMES.get(step, 0.0) + time.monotonic() - started


def _check(page, visit: Visit, *, shoot: bool) -> None:
    for width in WIDTHS:
        started = time.monotonic()
        page.set_viewport_size({"width": width, "height": HEIGHT})
        page.evaluate(NEXT_FRAMES)  # the page's own resize work (tablero.js) is done
        measured = page.evaluate(MEASURE)
        _timed("resize and measure", started)
        if measured["overflow"] > 0:
            visit.problems.append(
                f"{width}px: scrolls sideways by {measured['overflow']}px "
                f"({', '.join(measured['culprits'])})"
            )
        if measured["wrapped"]:
            visit.problems.append(f"{width}px: button labels wrap: {measured['wrapped']}")
        started = time.monotonic()
        violations = []
        if width == AXE_WIDTH or (visit.who == SCREENSHOT_ROLE and width in CHECKED_WIDTHS):
            violations = page.evaluate(RUN_AXE, sorted(FAILING_IMPACTS))
        _timed("axe", started)
        for violation in violations:
            visit.problems.append(
                f"{width}px: axe {violation['impact']} {violation['id']}: "
                f"{violation['help']} at {violation['targets']}"
            )
        if (shoot and width in CHECKED_WIDTHS) or visit.problems:
            name = f"{visit.page}-{visit.who}-{visit.language}-{width}.png"
            started = time.monotonic()
            page.screenshot(path=str(SWEEP / name), full_page=True)
            _timed("screenshots", started)


def _console(errors: list[tuple[str, str]], message) -> None:
    if message.type == "error":
        errors.append((message.text, message.location.get("url", "")))


def _page_error(errors: list[tuple[str, str]], error) -> None:
    errors.append((f"pageerror: {error}", ""))


def _sweep(
    browser,
    base_url: str,
    *,
    who: str,
    pages: list[tuple[str, str, tuple[str, ...]]],
    objects: dict[str, object],
    sign_in: Callable | None,
    only: str,
) -> list[Visit]:
    visits = []
    for language, locale in LANGUAGES.items():
        context = browser.new_context(
            base_url=base_url, locale=locale, viewport={"width": WIDTHS[0], "height": HEIGHT}
        )
        context.set_default_timeout(10_000)
        # axe-core comes with every page (an init script runs whatever the page's CSP says).
        context.add_init_script(path=str(AXE_JS))
        errors: list[tuple[str, str]] = []
        page = context.new_page()
        page.on("console", partial(_console, errors))
        page.on("pageerror", partial(_page_error, errors))
        if sign_in is not None:
            sign_in(page)
        for name, url_name, args in pages:
            if only and not re.search(only, f"{who} {language} {name}"):
                continue
            url = _url(url_name, args, objects)
            visit = Visit(who=who, language=language, page=name, url=url)
            page.set_viewport_size({"width": WIDTHS[0], "height": HEIGHT})
            started = time.monotonic()
            try:
                response = page.goto(url)
            except Exception as error:  # an empty error answer (405) or a crash: go on
                visit.problems.append(f"could not load: {str(error).splitlines()[0]}")
                visits.append(visit)
                continue
            status = response.status if response is not None else 0
            _timed("load", started)
            if status not in OK_STATUSES:
                visit.problems.append(f"answered {status}")
            if page.evaluate("document.documentElement.lang") != language:
                visit.problems.append(f"not in {language}")
            _check(page, visit, shoot=who == SCREENSHOT_ROLE)
            for text, source in errors:
                # Chromium logs the page's own 403 or 404 as an error: that is the page swept.
                own_status = source == page.url and f"status of {status} " in text
                if not own_status:
                    visit.problems.append(f"console: {text}")
            errors.clear()
            visits.append(visit)
        context.close()
    return visits


@pytest.mark.skipif(
    os.environ.get("TABLERO_SKIP_SWEEP") == "1",
    reason="TABLERO_SKIP_SWEEP=1 (CI sweeps once, on its first database)",
)
def test_every_page_fits_phones_has_no_errors_and_passes_axe(
    browser, live_server, transactional_db, consumer, fake_upstream, sign_in
):
    started = time.monotonic()
    objects, users = _seed(fake_upstream)
    SWEEP.mkdir(parents=True, exist_ok=True)
    only = os.environ.get("TABLERO_SWEEP_ONLY", "")

    visits: list[Visit] = []
    for role in ROLES:

        def signed_in(page, user=users[role]):
            sign_in(page, user)

        visits += _sweep(
            browser,
            live_server.url,
            who=role.value,
            pages=PAGES,
            objects=objects,
            sign_in=signed_in,
            only=only,
        )
    visits += _sweep(
        browser,
        live_server.url,
        who="anonymous",
        pages=ANONYMOUS_PAGES,
        objects=objects,
        sign_in=None,
        only=only,
    )

    elapsed = time.monotonic() - started
    failed = [visit for visit in visits if visit.problems]
    steps = ", ".join(f"{step} {seconds:.0f}s" for step, seconds in TIMES.items())
    lines = [f"{len(visits)} visits in {elapsed:.0f}s ({steps}); {len(failed)} with problems"]
    for visit in visits:
        mark = "FAIL" if visit.problems else "ok"
        lines.append(f"{mark:4} {visit.who:9} {visit.language} {visit.page:24} {visit.url}")
        lines.extend(f"       {problem}" for problem in visit.problems)
    (SWEEP / "report.txt").write_text("\n".join(lines) + "\n")
    (SWEEP / "report.json").write_text(
        json.dumps([visit.__dict__ for visit in failed], indent=1, ensure_ascii=False)
    )
    print(lines[0])
    assert not failed, "\n".join(line for line in lines[1:] if not re.match(r"^ok ", line))


def test_navigation_folds_into_a_menu_on_phones_without_javascript(
    browser, live_server, sign_in, team, member
):
    context = browser.new_context(base_url=live_server.url, java_script_enabled=False)
    try:
        page = context.new_page()
        sign_in(page, member)
        page.set_viewport_size({"width": 1366, "height": HEIGHT})
        page.goto(reverse("dashboard:team_home", args=[team.pk]))
        nav = page.get_by_role("navigation")
        menu = page.locator(".nav-drawer > summary")
        # Wide: the navigation is shown, no Menu button.
        expect(nav.get_by_role("link", name="Members")).to_be_visible()
        expect(menu).to_be_hidden()

        # A phone: a Menu button, the links folded until it is pressed.
        page.set_viewport_size({"width": 360, "height": HEIGHT})
        expect(menu).to_be_visible()
        expect(page.get_by_role("link", name="Members")).to_be_hidden()
        menu.click()
        expect(nav.get_by_role("link", name="Members")).to_be_visible()
        nav.get_by_role("link", name="Members").click()
        expect(page).to_have_url(reverse("accounts:members", args=[team.pk]))
        assert page.evaluate("document.documentElement.scrollWidth") <= 360
    finally:
        context.close()
