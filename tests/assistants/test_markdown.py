"""The model's answers as Markdown on a run's page: code blocks, lists, links and emphasis
render; nothing the model sends becomes HTML, and links go only to http, https and mailto."""

import re

import pytest
from django.urls import reverse

from assistants.markdown import LINK_REL, MAX_CHARS, MAX_NESTING, render_markdown
from tests.assistants.helpers import make_run

REL = f'rel="{LINK_REL}"'
# Every tag Markdown makes; anything else in the output came from the model.
MARKDOWN_TAGS = {
    "p", "br", "hr", "pre", "code", "em", "strong", "s", "a", "ul", "ol", "li", "blockquote",
    "h1", "h2", "h3", "h4", "h5", "h6", "table", "thead", "tbody", "tr", "th", "td",
}  # fmt: skip


def tags(html: str) -> set[str]:
    return {name.lower() for name in re.findall(r"</?([A-Za-z][\w-]*)", html)}


def test_code_blocks_lists_links_and_emphasis():
    html = render_markdown(
        "Some **bold**, *italic* and `code`.\n\n"
        "```python\nprint('<b>hi</b>')\n```\n\n"
        "- one\n- two\n  1. nested\n\n"
        "See [the docs](https://example.com/a?b=1&c=2) or <mailto:help@example.com>.\n\n"
        "| a | b |\n|---|---|\n| 1 | 2 |"
    )

    assert "<strong>bold</strong>" in html and "<em>italic</em>" in html
    assert "<code>code</code>" in html
    assert "<pre><code class=\"language-python\">print('&lt;b&gt;hi&lt;/b&gt;')" in html
    assert "<ul>\n<li>one</li>" in html and "<ol>\n<li>nested</li>" in html
    assert f'<a href="https://example.com/a?b=1&amp;c=2" {REL}>the docs</a>' in html
    assert f'<a href="mailto:help@example.com" {REL}>' in html
    assert "<table>" in html and "<td>1</td>" in html


@pytest.mark.parametrize(
    "hostile",
    [
        "<script>alert(1)</script>",
        "<img src=x onerror=alert(1)>",
        '<a href="https://example.com" onclick="alert(1)">x</a>',
        "<!-- a comment --><iframe src=https://evil.example></iframe>",
        "<style>body{display:none}</style>",
        "```\n</code></pre><script>alert(1)</script>\n```",
        "`<script>alert(1)</script>`",
        '```js" onmouseover="alert(1)\n1\n```',
    ],
)
def test_no_html_from_the_model(hostile):
    html = render_markdown(hostile)

    assert tags(html) <= MARKDOWN_TAGS
    assert "<!--" not in html
    assert not re.search(r"<[^>]+\son\w+=", html)  # no event handler on any tag


@pytest.mark.parametrize(
    "link",
    [
        "[x](javascript:alert(1))",
        "[x](JaVaScRiPt:alert(1))",
        "[x](&#106;avascript:alert(1))",
        "[x](java%0ascript:alert(1))",
        "[x]( javascript:alert(1))",
        "<javascript:alert(1)>",
        "[x](vbscript:msgbox(1))",
        "[x](data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==)",
        "<data:text/html,<script>alert(1)</script>>",
        "[x](file:///etc/passwd)",
        "[x](/admin/)",
        "[x](//evil.example/)",
        "[x](https:evil)",
        "[x][ref]\n\n[ref]: javascript:alert(1)",
    ],
)
def test_links_only_to_http_https_and_mailto(link):
    html = render_markdown(link)

    assert "<a " not in html
    assert 'href="' not in html


def test_images_are_never_loaded():
    html = render_markdown(
        "![tracker](https://evil.example/pixel.png) ![x](data:image/png;base64,AA)"
    )

    assert "<img" not in html
    assert f'<a href="https://evil.example/pixel.png" {REL}>tracker</a>' in html


def test_deeply_nested_lists_and_quotes_stay_bounded():
    nested = "\n".join("  " * depth + "- item" for depth in range(500))
    quotes = ">" * 10_000 + " deep"

    lists = render_markdown(nested)
    quoted = render_markdown(quotes)

    assert lists.count("<ul>") <= MAX_NESTING
    assert quoted.count("<blockquote>") <= MAX_NESTING


def test_a_huge_answer_is_shown_as_plain_text():
    huge = "<script>alert(1)</script> **x** " * (MAX_CHARS // 20)

    html = render_markdown(huge)

    assert len(huge) > MAX_CHARS
    assert html.startswith('<pre class="run-output">&lt;script&gt;')
    assert "<strong>" not in html and "<script>" not in html


def test_pathological_inputs_render():
    for text in ("[" * 20_000, "*a _b " * 5_000, "`" * 20_000, "<a" * 10_000, "\\" * 20_000):
        html = render_markdown(text)
        assert "<a " not in html and "<script" not in html


@pytest.mark.django_db
def test_the_run_page_shows_the_answer_safely(team, assistant, member, viewer_client):
    run = make_run(
        assistant,
        started_by=member,
        input="<b>my question</b>",
        output_text=(
            "Here:\n\n```\nx = 1\n```\n\n- [ok](https://example.com)\n"
            "- [bad](javascript:alert(1))\n\n<script>alert('model')</script>"
        ),
    )

    content = viewer_client.get(
        reverse("assistants:run_detail", kwargs={"team_id": team.pk, "run_id": run.pk})
    ).content.decode()

    assert "&lt;b&gt;my question&lt;/b&gt;" in content  # the user's message is text too
    assert "<pre><code>x = 1\n</code></pre>" in content
    assert f'<a href="https://example.com" {REL}>ok</a>' in content
    assert "javascript:alert" in content and 'href="javascript' not in content
    assert "&lt;script&gt;alert('model')&lt;/script&gt;" in content
    assert "<script>alert(" not in content
