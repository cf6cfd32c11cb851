"""The model's answers as safe HTML: Markdown (CommonMark, with tables and strikethrough)
rendered by markdown-it-py with raw HTML off, so that nothing the provider sends becomes markup.

- HTML in the text (`<script>`, `<img onerror>`, comments) is shown as text, escaped.
- Links go only to http, https and mailto addresses, each with rel="noopener noreferrer
  nofollow"; any other link (javascript:, data:, vbscript:, file:, relative paths) stays text.
- Images are never loaded (the provider's answer must not make the reader's browser fetch
  anything): `![alt](url)` becomes a link to the picture, under the rules above.
- Nesting is bounded (`MAX_NESTING`): a list nested a thousand deep renders flat text beyond it
  instead of recursing. A text longer than `MAX_CHARS` is shown as plain text (escaped), not
  parsed: markdown-it's worst inputs (tens of thousands of "[") take about 25 µs a character.
- An answer is rendered once and kept in the cache (by its digest): it never changes, and a
  run's page is looked at again and again while its newest turn is followed.
"""

import hashlib
from urllib.parse import urlsplit

from django.core.cache import cache
from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

LINK_SCHEMES = frozenset({"http", "https", "mailto"})
LINK_REL = "noopener noreferrer nofollow"
MAX_NESTING = 20
MAX_CHARS = 100_000
CACHE_TTL = 24 * 60 * 60


def link_allowed(url: str) -> bool:
    """Whether a link may point at `url`: http or https with a host, or mailto."""
    try:
        parts = urlsplit(url.strip())
    except ValueError:
        return False
    scheme = parts.scheme.lower()
    if scheme not in LINK_SCHEMES:
        return False
    return scheme == "mailto" or bool(parts.netloc)


def _parser() -> MarkdownIt:
    md = MarkdownIt(
        "commonmark",
        {"html": False, "linkify": False, "typographer": False, "maxNesting": MAX_NESTING},
    )
    md.enable(["table", "strikethrough"])
    md.disable("image")
    md.validateLink = link_allowed  # type: ignore[method-assign]

    def link_open(self, tokens, idx, options, env):  # markdown-it's renderer rule signature
        tokens[idx].attrSet("rel", LINK_REL)
        return self.renderToken(tokens, idx, options, env)

    md.add_render_rule("link_open", link_open)
    return md


_MD = _parser()


def render_markdown(text: str) -> SafeString:
    """`text` (the model's answer) as safe HTML."""
    if not text:
        return mark_safe("")
    if len(text) > MAX_CHARS:
        return mark_safe(f'<pre class="run-output">{escape(text)}</pre>')  # noqa: S308 - escaped
    key = "assistants:markdown:" + hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
    html = cache.get(key)
    if not isinstance(html, str):
        html = _MD.render(text)
        cache.set(key, html, timeout=CACHE_TTL)
    return mark_safe(html)  # noqa: S308 - raw HTML is off: every input is escaped
