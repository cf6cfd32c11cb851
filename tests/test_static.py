"""Security headers on every page, and static files as production serves them.

`collectstatic` runs in a subprocess with a temporary STATIC_ROOT and the real storage
(CompressedManifestStaticFilesStorage); a second subprocess asks WhiteNoise for the hashed file.
"""

import json
import re

import pytest
from django.urls import reverse

from tests.test_settings import BASE_DIR, production_env, run

HEADERS_PAGE = "accounts:login"


@pytest.fixture
def page_response(client, db):
    response = client.get(reverse(HEADERS_PAGE))
    assert response.status_code == 200
    return response


def test_content_security_policy_forbids_inline_code(page_response):
    policy = page_response.headers["Content-Security-Policy"]
    directives = {}
    for part in filter(None, (part.strip() for part in policy.split(";"))):
        name, _, value = part.partition(" ")
        directives[name] = value

    assert directives["default-src"] == "'self'"
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe-inline" not in policy
    assert "unsafe-eval" not in policy


def test_page_has_the_other_security_headers(page_response):
    assert page_response.headers["X-Frame-Options"] == "DENY"
    assert page_response.headers["Referrer-Policy"] == "same-origin"
    assert page_response.headers["X-Content-Type-Options"] == "nosniff"
    assert page_response.headers["Cross-Origin-Opener-Policy"] == "same-origin"


def test_page_has_no_inline_scripts_or_styles(page_response):
    html = page_response.content.decode()

    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html), "inline <script> block"
    assert "<style" not in html
    assert not re.search(r"\sstyle=", html), "style= attribute"
    assert not re.search(r"\son[a-z]+=", html), "inline event handler"


INLINE_CODE = {
    "inline <script> block": re.compile(r"<script(?![^>]*\bsrc=)[^>]*>"),
    "<style> block": re.compile(r"<style\b"),
    "style= attribute": re.compile(r"\sstyle\s*="),
    "inline event handler": re.compile(r"\son[a-z]+\s*=", re.IGNORECASE),
    "javascript: URL": re.compile(r"javascript:", re.IGNORECASE),
    "htmx inline handler": re.compile(r"\shx-on[:-]"),
}


def test_no_template_has_inline_code():
    # Every page, not only the one fetched above: the CSP would silently break any of these.
    found = []
    for template in sorted((BASE_DIR / "templates").rglob("*.html")):
        text = template.read_text(encoding="utf-8")
        for problem, pattern in INLINE_CODE.items():
            for match in pattern.finditer(text):
                line = text.count("\n", 0, match.start()) + 1
                found.append(f"{template.relative_to(BASE_DIR)}:{line}: {problem}")
    assert not found, "\n".join(found)


SERVE_HASHED = """
import json
import django
django.setup()
from django.contrib.staticfiles.storage import staticfiles_storage
from django.test import Client

url = staticfiles_storage.url("css/tablero.css")
response = Client().get(url, secure=True)
print(json.dumps({
    "url": url,
    "status": response.status_code,
    "type": response.headers.get("Content-Type", ""),
    "cache": response.headers.get("Cache-Control", ""),
    "body": b"".join(response.streaming_content).decode()[:2000],
}))
"""


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    root = tmp_path_factory.mktemp("static-root")
    env = production_env(STATIC_ROOT=str(root), ALLOWED_HOSTS="testserver")
    result = run(["manage.py", "collectstatic", "--noinput"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    return root, env


def test_collectstatic_writes_hashed_and_compressed_files(collected):
    root, _ = collected
    manifest = json.loads((root / "staticfiles.json").read_text())["paths"]

    for name in ("css/tablero.css", "js/htmx.min.js", "js/tablero.js", "img/favicon.svg"):
        hashed = manifest[name]
        assert re.fullmatch(re.escape(name.rsplit(".", 1)[0]) + r"\.[0-9a-f]{12}\.\w+", hashed)
        assert (root / hashed).is_file()
    assert (root / (manifest["js/htmx.min.js"] + ".gz")).is_file()


def test_whitenoise_serves_the_hashed_file_for_a_year(collected):
    _, env = collected
    result = run(["-c", SERVE_HASHED], env)
    assert result.returncode == 0, result.stderr
    served = json.loads(result.stdout)

    assert re.search(r"/static/css/tablero\.[0-9a-f]{12}\.css$", served["url"])
    assert served["status"] == 200
    assert served["type"].startswith("text/css")
    assert "max-age=315360000" in served["cache"]
    assert "immutable" in served["cache"]
    source = (BASE_DIR / "static" / "css" / "tablero.css").read_text()
    assert served["body"] == source[:2000]


def make_run_environment() -> dict[str, str]:
    """What `make run` and `make demo` export, read from the Makefile itself."""
    text = (BASE_DIR / "Makefile").read_text()
    exported = dict(re.findall(r"^run demo: export (\w+) = (\S+)$", text, re.MULTILINE))
    assert exported["DEBUG"] == "false"
    return exported


SERVE_AS_MAKE_RUN = """
import json
import django
django.setup()
from django.conf import settings
from django.contrib.staticfiles.storage import staticfiles_storage
from django.test import Client

client = Client(HTTP_HOST="127.0.0.1")
missing = client.get("/no-such-page/")
css = client.get(staticfiles_storage.url("css/tablero.css"))
login = client.get("/login/")
print(json.dumps({
    "debug": settings.DEBUG,
    "missing_status": missing.status_code,
    "missing_body": missing.content.decode(),
    "css_status": css.status_code,
    "login_status": login.status_code,
}))
"""


def test_make_run_serves_tablero_pages_and_static_files_over_plain_http(tmp_path):
    # A developer's .env may still say DEBUG=true: `make run` exports DEBUG=false, and the
    # environment wins over .env (read_env(overwrite=False)); here .env is ignored altogether.
    root = tmp_path / "static"
    env = production_env(
        STATIC_ROOT=str(root), ALLOWED_HOSTS="127.0.0.1,localhost", **make_run_environment()
    )
    result = run(["manage.py", "collectstatic", "--noinput"], env)
    assert result.returncode == 0, result.stdout + result.stderr
    result = run(["-c", SERVE_AS_MAKE_RUN], env)
    assert result.returncode == 0, result.stderr
    served = json.loads(result.stdout)

    assert served["debug"] is False
    assert served["missing_status"] == 404
    assert "Page not found" in served["missing_body"]
    assert "Back to Tablero" in served["missing_body"]
    assert "technical_404" not in served["missing_body"]
    assert "Django tried these URL patterns" not in served["missing_body"]
    assert served["css_status"] == 200  # WhiteNoise, with DEBUG off
    assert served["login_status"] == 200  # plain http: no redirect to https


def test_the_environment_wins_over_dotenv(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("DEBUG=true\n")
    code = (
        "import environ; env = environ.Env(); "
        f"environ.Env.read_env({str(dotenv)!r}, overwrite=False); "
        "print(env.bool('DEBUG'))"
    )
    result = run(["-c", code], production_env(DEBUG="false"))
    assert result.stdout.strip() == "False", result.stderr
