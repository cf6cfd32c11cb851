"""The Spanish catalogue is complete, compiled, and used.

- every entry of locale/es/LC_MESSAGES/django.po is translated and none is fuzzy;
- translations keep the placeholders of their source strings (a missing or unknown one would
  show a raw `%(name)s` or raise at render time);
- the committed django.mo holds exactly the .po's translations (a newcomer has no msgfmt);
- `makemessages` finds no source string that the catalogue lacks (needs GNU xgettext);
- a Spanish browser gets Spanish pages, and the language switcher switches.
"""

import re
import shutil

import polib
import pytest
from django.urls import reverse
from django.utils import translation
from django.utils.html import escape

from tests.test_settings import BASE_DIR, production_env, run

PO_PATH = BASE_DIR / "locale" / "es" / "LC_MESSAGES" / "django.po"
MO_PATH = PO_PATH.with_suffix(".mo")
FIX = "Run `make messages`, translate the new entries in locale/es/LC_MESSAGES/django.po, "
FIX += "then commit the .po and the compiled .mo."

# Paths `make messages` leaves out of the catalogue; keep in step with the Makefile.
MAKEMESSAGES_IGNORE = [
    ".venv/*",
    "staticfiles/*",
    "tests/*",
    "bench/*",
    "node_modules/*",
    "test-artifacts/*",
    ".demo/*",
]
NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv",
    "staticfiles",
    "node_modules",
    "tests",
    "bench",
    "test-artifacts",
    ".demo",
    "__pycache__",
    "*.pyc",
    "*.sqlite3",
    "*.egg-info",
    ".pytest_cache",
    ".ruff_cache",
    ".hypothesis",
    ".env",
)

# %(name)s and %s style (python-format, blocktranslate) and {name} style (python-brace-format).
PLACEHOLDER = re.compile(r"%\(\w+\)[#0\- +]*\d*(?:\.\d+)?[sdifrxXeEgGcoa]|%[sdifr]|\{\w+\}")


def fail(message: str) -> None:
    pytest.fail(message, pytrace=False)


def listing(entries: list[str], limit: int = 30) -> str:
    shown = "\n".join(f"  - {entry}" for entry in entries[:limit])
    more = f"\n  … and {len(entries) - limit} more" if len(entries) > limit else ""
    return shown + more


@pytest.fixture(scope="module")
def catalogue() -> polib.POFile:
    if not PO_PATH.is_file():
        fail(f"The Spanish catalogue {PO_PATH.relative_to(BASE_DIR)} does not exist. {FIX}")
    po = polib.pofile(str(PO_PATH))
    if not [entry for entry in po if not entry.obsolete]:
        fail(f"The Spanish catalogue {PO_PATH.relative_to(BASE_DIR)} has no entries. {FIX}")
    return po


def live_entries(po: polib.POFile) -> list[polib.POEntry]:
    return [entry for entry in po if not entry.obsolete]


def label(entry: polib.POEntry) -> str:
    context = f"[{entry.msgctxt}] " if entry.msgctxt else ""
    return f"{context}{entry.msgid!r}"


def test_catalogue_header_is_spanish_utf8(catalogue):
    assert catalogue.metadata.get("Language") == "es"
    assert "charset=UTF-8" in catalogue.metadata.get("Content-Type", "")
    assert "nplurals=" in catalogue.metadata.get("Plural-Forms", "")


def test_every_entry_is_translated(catalogue):
    untranslated = [
        label(entry)
        for entry in live_entries(catalogue)
        if "fuzzy" not in entry.flags and not entry.translated()
    ]
    if untranslated:
        fail(f"{len(untranslated)} untranslated entries in django.po:\n{listing(untranslated)}")


def test_no_entry_is_fuzzy(catalogue):
    fuzzy = [label(entry) for entry in live_entries(catalogue) if "fuzzy" in entry.flags]
    if fuzzy:
        fail(
            f"{len(fuzzy)} fuzzy entries in django.po (check each translation, then remove the "
            f"'#, fuzzy' line):\n{listing(fuzzy)}"
        )


def placeholders(text: str) -> set[str]:
    return {match.group(0) for match in PLACEHOLDER.finditer(text.replace("%%", ""))}


def placeholder_problems(entry: polib.POEntry) -> list[str]:
    problems = []
    if entry.msgid_plural:
        allowed = placeholders(entry.msgid) | placeholders(entry.msgid_plural)
        forms = [text for _, text in sorted(entry.msgstr_plural.items()) if text]
        for text in forms:
            if unknown := placeholders(text) - allowed:
                problems.append(f"{label(entry)}: unknown {sorted(unknown)} in {text!r}")
        # The singular may say "one" instead of the number; the other forms may not.
        for text in forms[1:]:
            if missing := placeholders(entry.msgid_plural) - placeholders(text):
                problems.append(f"{label(entry)}: {sorted(missing)} missing from {text!r}")
    elif entry.msgstr:
        source, target = placeholders(entry.msgid), placeholders(entry.msgstr)
        if source != target:
            problems.append(
                f"{label(entry)}: source has {sorted(source)}, translation {entry.msgstr!r} "
                f"has {sorted(target)}"
            )
    return problems


def test_translations_keep_their_placeholders(catalogue):
    problems = [problem for e in live_entries(catalogue) for problem in placeholder_problems(e)]
    if problems:
        fail("Translations with wrong placeholders:\n" + listing(problems))


def compiled_form(entries) -> dict[tuple[str, str], tuple[str, ...]]:
    compiled = {}
    for entry in entries:
        if entry.msgid_plural:
            value = tuple(text for _, text in sorted(entry.msgstr_plural.items()))
        else:
            value = (entry.msgstr,)
        compiled[(entry.msgctxt or "", entry.msgid)] = value
    return compiled


def test_compiled_catalogue_matches_the_po(catalogue):
    if not MO_PATH.is_file():
        fail(f"{MO_PATH.relative_to(BASE_DIR)} is missing. {FIX}")
    expected = compiled_form(
        entry
        for entry in live_entries(catalogue)
        if entry.translated() and "fuzzy" not in entry.flags and entry.msgid
    )
    actual = compiled_form(entry for entry in polib.mofile(str(MO_PATH)) if entry.msgid)

    stale = sorted(
        repr(key[1])
        for key in expected.keys() | actual.keys()
        if expected.get(key) != actual.get(key)
    )
    if stale:
        fail(
            f"django.mo is out of date with django.po for {len(stale)} entries "
            f"(run `make messages`, or `manage.py compilemessages -l es`):\n{listing(stale)}"
        )


@pytest.fixture(scope="module")
def extracted_msgids(tmp_path_factory) -> set[tuple[str, str]]:
    if shutil.which("xgettext") is None:
        pytest.skip("GNU gettext (xgettext) is not installed; cannot extract source strings")
    copy = tmp_path_factory.mktemp("source") / "tablero"
    shutil.copytree(BASE_DIR, copy, ignore=NOT_SOURCE, symlinks=True)
    ignores = [argument for pattern in MAKEMESSAGES_IGNORE for argument in ("--ignore", pattern)]
    result = run(
        ["manage.py", "makemessages", "--locale", "es", "--no-obsolete", *ignores],
        production_env(),
        cwd=copy,
    )
    if result.returncode != 0:
        fail(f"makemessages failed:\n{result.stdout}{result.stderr}")
    extracted = polib.pofile(str(copy / PO_PATH.relative_to(BASE_DIR)))
    return {(entry.msgctxt or "", entry.msgid) for entry in extracted if not entry.obsolete}


def test_catalogue_has_every_source_string(catalogue, extracted_msgids):
    known = {(entry.msgctxt or "", entry.msgid) for entry in live_entries(catalogue)}
    missing = sorted(
        f"[{context}] {msgid!r}" if context else repr(msgid)
        for context, msgid in extracted_msgids - known
    )
    if missing:
        fail(f"{len(missing)} source strings are not in django.po. {FIX}\n{listing(missing)}")


def spanish(text: str) -> str:
    with translation.override("es"):
        translated = translation.gettext(text)
    if translated == text:
        fail(f"No Spanish translation for {text!r} in the compiled catalogue. {FIX}")
    return translated


SIGN_IN = "Sign in"


@pytest.mark.django_db
def test_english_sign_in_page_by_default(client):
    response = client.get(reverse("accounts:login"), HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    assert '<html lang="en">' in response.content.decode()
    assert SIGN_IN in response.content.decode()


@pytest.mark.django_db
def test_spanish_browser_gets_the_spanish_sign_in_page(client):
    expected = spanish(SIGN_IN)

    response = client.get(reverse("accounts:login"), HTTP_ACCEPT_LANGUAGE="es-ES,es;q=0.9")

    html = response.content.decode()
    assert response.status_code == 200
    assert '<html lang="es">' in html
    assert escape(expected) in html


@pytest.mark.django_db
def test_language_switcher_switches_to_spanish_and_back(client):
    login = reverse("accounts:login")
    expected = spanish(SIGN_IN)

    response = client.post(reverse("set_language"), {"language": "es", "next": login})

    assert response.status_code == 302
    assert response.headers["Location"] == login
    html = client.get(login, HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert '<html lang="es">' in html
    assert escape(expected) in html

    client.post(reverse("set_language"), {"language": "en", "next": login})
    html = client.get(login, HTTP_ACCEPT_LANGUAGE="es").content.decode()
    assert '<html lang="en">' in html
    assert SIGN_IN in html


def test_makemessages_ignores_match_the_makefile():
    makefile = (BASE_DIR / "Makefile").read_text()
    for pattern in MAKEMESSAGES_IGNORE:
        assert f"--ignore '{pattern}'" in makefile, f"Makefile's `messages` lacks {pattern}"
