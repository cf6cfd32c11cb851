"""What the base template costs every page, part by part (not a test).

    .venv/bin/python bench/base_page.py [--teams 5] [--renders 300] [--database-url URL]

In a throwaway SQLite database (or the one --database-url names: empty or disposable), makes
an admin who belongs to --teams teams, then measures, as that admin signed in:
- a minimal page on the base template (the "password changed" page: the frame and a sentence),
  whole, through Django's test client (middleware, session, sign-in, view, template);
- the same page's template alone (rendered with its request: the context processors included);
- each part of the frame rendered alone: the team switcher, the navigation, the language form,
  the messages; and the context processors' own query (the memberships);
- the sign-in page (the base template signed out) for comparison.
Prints the queries and the median wall time and CPU time (this thread's) of each. The CPU time
is what a busy machine does not inflate: read it when the load is high. Also says which
template loaders are in use (the cached loader must be: templates are compiled once).

It reuses bench/home_page.py's throwaway environment and team builder; nothing from tests/.
"""

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import home_page

PARTS = (
    "partials/team_switcher.html",
    "partials/nav.html",
    "partials/language_form.html",
    "partials/messages.html",
)


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teams", type=int, default=5, help="teams in the admin's switcher")
    parser.add_argument("--renders", type=int, default=300)
    parser.add_argument("--database-url", default="")
    return parser.parse_args()


def _timed(action, renders: int) -> tuple[float, float]:
    """(median wall ms, median CPU ms) of `renders` calls, after a few to warm up."""
    for _ in range(10):
        action()
    walls, cpus = [], []
    for _ in range(renders):
        cpu, wall = time.thread_time(), time.perf_counter()
        action()
        walls.append((time.perf_counter() - wall) * 1000)
        cpus.append((time.thread_time() - cpu) * 1000)
    return statistics.median(walls), statistics.median(cpus)


def _queries(action) -> int:
    from django.db import connection as db
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(db) as captured:
        action()
    return len(captured)


def main() -> None:
    arguments = _arguments()
    with tempfile.TemporaryDirectory(prefix="tablero-bench-") as directory:
        url = arguments.database_url or f"sqlite:///{directory}/bench.sqlite3"
        home_page._setup(url)
        from django.contrib.messages.storage.fallback import FallbackStorage
        from django.contrib.sessions.backends.cache import SessionStore
        from django.core.management import call_command
        from django.template import engines
        from django.template.loader import render_to_string
        from django.test import Client, RequestFactory
        from django.test.utils import override_settings
        from django.urls import resolve, reverse

        from accounts.context_processors import navigation
        from accounts.models import Membership, Role, Team

        call_command("migrate", verbosity=0)
        warnings.filterwarnings("ignore", "No directory at", UserWarning)
        with override_settings(
            STORAGES={
                "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
                "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
            },
        ):
            small = {"connections": 3, "assistants": 3, "runs": 3, "errors": 3}
            team, admin, _viewer = home_page._build("Base", small)
            for number in range(arguments.teams - 1):
                other = Team.objects.create(name=f"Other team {number}")
                Membership.objects.create(team=other, user=admin, role=Role.MEMBER)

            loaders = engines["django"].engine.template_loaders
            print("template loaders:", ", ".join(type(loader).__module__ for loader in loaders))
            print(f"an admin in {arguments.teams} teams; {arguments.renders} renders each\n")

            client = Client()
            client.force_login(admin)
            client.get(reverse("dashboard:team_home", args=[team.pk]))  # the team, in session
            page = reverse("accounts:password_change_done")
            signed_out = Client()
            factory = RequestFactory()

            def request():
                made = factory.get(page)
                made.user, made.session = admin, SessionStore()
                made.resolver_match = resolve(page)
                made._messages = FallbackStorage(made)
                return made

            def template():
                render_to_string("accounts/password_change_done.html", request=request())

            def part(name):
                return lambda: render_to_string(name, request=request())

            def memberships():
                list(navigation(request())["nav_memberships"])

            rows = [
                ("minimal page, whole request", lambda: client.get(page)),
                ("  its template alone", template),
                *((f"    {name.split('/')[-1]}", part(name)) for name in PARTS),
                ("    the memberships (cache or query)", memberships),
                ("sign-in page, whole request", lambda: signed_out.get("/login/")),
            ]
            print(f"{'what':<36} {'queries':>7} {'wall ms':>8} {'CPU ms':>8}")
            for label, action in rows:
                queries = _queries(action)
                wall, cpu = _timed(action, arguments.renders)
                print(f"{label:<36} {queries:>7} {wall:>8.2f} {cpu:>8.2f}", flush=True)


if __name__ == "__main__":
    main()
