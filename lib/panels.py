"""Sections that an app above adds to a page of an app below it, without the lower app
importing it (pyproject.toml's layers): the gateway's traffic on a connection's page.

The app that owns a section registers it from its `AppConfig.ready()`:

    register("connection_detail", "gateway_traffic", render)

where `render(request, access, **objects)` returns the section's HTML (or "" to show nothing).
The page's view calls `render_all(slot, request, access, **objects)` and puts the result in its
template. Registering a key again replaces the section.
"""

from collections.abc import Callable
from typing import Any

from django.utils.safestring import SafeString, mark_safe

Renderer = Callable[..., str]

_slots: dict[str, dict[str, Renderer]] = {}


def register(slot: str, key: str, render: Renderer) -> None:
    _slots.setdefault(slot, {})[key] = render


def unregister(slot: str, key: str) -> None:
    _slots.get(slot, {}).pop(key, None)


def render_all(slot: str, request: Any, access: Any, **objects: Any) -> list[SafeString]:
    """The HTML of every section registered for `slot`, in the order they were registered;
    each renderer escapes what it shows (a template does)."""
    sections = []
    for render in _slots.get(slot, {}).values():
        html = render(request, access, **objects)
        if html:
            sections.append(mark_safe(html))  # noqa: S308  (rendered by a template)
    return sections
