"""Template tags for the page frame (base.html and its partials), which every page renders.

{% load frame_tags %}
{% team_nav_urls team_id as urls %}   {# the navigation's URLs for a team: urls.connections ... #}
{% capture as nav_html %}...{% endcapture %}  {# render once, show {{ nav_html }} twice #}
"""

from functools import lru_cache

from django import template
from django.core.signals import setting_changed
from django.dispatch import receiver
from django.urls import get_script_prefix, get_urlconf, reverse
from django.utils.safestring import mark_safe

register = template.Library()

# What the navigation links to, by the name the template uses. Every one takes the team's id.
_NAV_ROUTES = {
    "team_home": "dashboard:team_home",
    "connections": "connections:list",
    "assistants": "assistants:list",
    "runs": "assistants:runs",
    "usage": "assistants:usage",
    "tokens": "gateway:tokens",
    "gateway_usage": "gateway_usage:summary",
    "notifications": "dashboard:notifications",
    "members": "accounts:members",
    "spend": "dashboard:spend",
    "audit": "accounts:audit",
    "team_settings": "accounts:team_settings",
}


@lru_cache(maxsize=2048)
def _nav_urls(team_id: str, urlconf: str | None, script_prefix: str) -> dict[str, str]:
    # The URLs depend only on the team, the URL configuration and the prefix the site is
    # mounted under (all in the key), so each team's are reversed once per process.
    return {
        key: reverse(name, args=[team_id], urlconf=urlconf) for key, name in _NAV_ROUTES.items()
    }


@receiver(setting_changed)
def _forget_urls(*, setting: str, **kwargs) -> None:
    if setting == "ROOT_URLCONF":
        _nav_urls.cache_clear()


@register.simple_tag
def team_nav_urls(team_id) -> dict[str, str]:
    """The navigation's URLs for the team (reversed once per team and process)."""
    return _nav_urls(str(team_id), get_urlconf(), get_script_prefix())


class CaptureNode(template.Node):
    def __init__(self, nodelist: template.NodeList, name: str):
        self.nodelist, self.name = nodelist, name

    def render(self, context: template.Context) -> str:
        # Rendered template output: already escaped where it had to be.
        context[self.name] = mark_safe(self.nodelist.render(context))  # noqa: S308
        return ""


@register.tag
def capture(parser: template.base.Parser, token: template.base.Token) -> CaptureNode:
    """{% capture as name %}...{% endcapture %}: renders the block once into `name` (shown
    nowhere by itself), so a page can show the same markup twice for the cost of once."""
    bits = token.split_contents()
    if len(bits) != 3 or bits[1] != "as":
        raise template.TemplateSyntaxError("Usage: {% capture as name %}...{% endcapture %}")
    nodelist = parser.parse(("endcapture",))
    parser.delete_first_token()
    return CaptureNode(nodelist, bits[2])
