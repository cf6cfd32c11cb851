"""What Tablero knows about models beyond what the provider's list says: what each one is for
(from its id, by the rule table below) and which ones OpenAI retires, when, and for what.

Both tables are data, kept by hand: **update them when OpenAI announces deprecations**
(https://developers.openai.com/api/docs/deprecations, "Upcoming deprecations" and the history
below it). The provider's own `shutdown_date` on a model (GET /v1/models) wins over this table
where it gives one; the table covers servers and lists that do not send it, and names the
replacement, which the provider never does.

The retirement table is OpenAI's: it applies to connections to api.openai.com only
(`applies_to`). A compatible server (Azure, a proxy, a local server) may serve an old name as
long as it likes; there only the server's own `shutdown_date` counts.

Purpose rules: the first rule whose pattern matches the id (lower-cased, without the `ft:`
prefix of a fine-tuned model or a `vendor/` prefix of a compatible server) decides. Patterns
are regular expressions matched at the start of the id. An id no rule matches is "other", and
assistants may not use it (a chat model on a compatible server can still be typed where no list
was fetched).
"""

import functools
import re
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlsplit

from django.db import models
from django.utils.translation import gettext_lazy as _


class Purpose(models.TextChoices):
    CHAT = "chat", _("Chat")
    REASONING = "reasoning", _("Reasoning")
    EMBEDDINGS = "embeddings", _("Embeddings")
    AUDIO = "audio", _("Audio")
    IMAGES = "images", _("Images")
    MODERATION = "moderation", _("Moderation")
    OTHER = "other", _("Other")


# (pattern, purpose, assistants can use it). Order matters: specific before general.
PURPOSE_RULES: list[tuple[str, Purpose, bool]] = [
    (r".*embedding", Purpose.EMBEDDINGS, False),
    (r".*moderation", Purpose.MODERATION, False),
    (r"(whisper|tts)", Purpose.AUDIO, False),
    (r".*(realtime|transcribe|audio|-tts)", Purpose.AUDIO, False),
    (r"(dall-e|gpt-image|chatgpt-image|sora)", Purpose.IMAGES, False),
    # Made for other APIs than Assistants or Responses with tools: chat completions only.
    (r".*(search-preview|computer-use)", Purpose.CHAT, False),
    (r"(babbage|davinci)", Purpose.OTHER, False),
    (r"o\d", Purpose.REASONING, True),
    (r"gpt-5", Purpose.REASONING, True),
    (r"codex", Purpose.REASONING, True),
    (r"(gpt-|chatgpt-)", Purpose.CHAT, True),
]
# The rules as one expression, each its own named group: the regex engine tries them in order
# and the first that matches names the rule (one match per id, not one per rule).
_ANY_RULE = re.compile(
    "|".join(f"(?P<rule{n}>{pattern})" for n, (pattern, _p, _u) in enumerate(PURPOSE_RULES))
)


def base_id(model_id: str) -> str:
    """The id the rules read: lower case, without `ft:` and a `vendor/` prefix; a fine-tuned
    id `ft:gpt-4o-mini:org::abc` reads as its base, `gpt-4o-mini`."""
    name = model_id.lower().split("/")[-1]
    if name.startswith("ft:"):
        name = name[3:].split(":")[0]
    return name


@functools.lru_cache(maxsize=4096)  # the same ids come back with every list and page
def classify(model_id: str) -> tuple[Purpose, bool]:
    """(what the model is for, whether an assistant can use it), by the first rule matching."""
    found = _ANY_RULE.match(base_id(model_id))
    if found is None:
        return Purpose.OTHER, False
    _pattern, purpose, usable = PURPOSE_RULES[int(found.lastgroup.removeprefix("rule"))]
    return purpose, usable


def fine_tuned_from(model_id: str) -> str:
    """The base model of a fine-tuned id (`ft:<base>:<org>:…`), "" for any other id."""
    if not model_id.startswith("ft:"):
        return ""
    return model_id[3:].split(":")[0]


@dataclass(frozen=True)
class Retirement:
    shutdown: date
    replacement: str  # "" when OpenAI named none


# Model id → its shutdown date and OpenAI's recommended replacement, as on OpenAI's
# deprecations page (the replacement of a replacement that is itself retired is followed by
# `replacement_for`). Keep sorted by shutdown date.
RETIREMENTS: dict[str, Retirement] = {
    # Shut down already.
    "gpt-4-32k": Retirement(date(2025, 6, 6), "gpt-4o"),
    "gpt-4-vision-preview": Retirement(date(2024, 12, 6), "gpt-4o"),
    "gpt-4.5-preview": Retirement(date(2025, 7, 14), "gpt-4.1"),
    "o1-preview": Retirement(date(2025, 7, 28), "o3"),
    "o1-mini": Retirement(date(2025, 10, 27), "o4-mini"),
    "codex-mini-latest": Retirement(date(2026, 1, 16), "gpt-5-codex-mini"),
    "chatgpt-4o-latest": Retirement(date(2026, 2, 17), "gpt-5.1-chat-latest"),
    "computer-use-preview": Retirement(date(2026, 7, 23), "gpt-5.4-mini"),
    "gpt-4o-audio-preview-2024-12-17": Retirement(date(2026, 7, 23), "gpt-audio-1.5"),
    "gpt-4o-mini-audio-preview-2024-12-17": Retirement(date(2026, 7, 23), "gpt-audio-mini"),
    "gpt-4o-mini-realtime-preview-2024-12-17": Retirement(date(2026, 7, 23), "gpt-realtime-mini"),
    "gpt-4o-search-preview-2025-03-11": Retirement(date(2026, 7, 23), "gpt-4.1-mini"),
    "gpt-4o-mini-search-preview-2025-03-11": Retirement(date(2026, 7, 23), "gpt-4.1-mini"),
    "gpt-5-chat-latest": Retirement(date(2026, 7, 23), "gpt-5.3-chat-latest"),
    "gpt-5.1-chat-latest": Retirement(date(2026, 7, 23), "gpt-5.3-chat-latest"),
    "gpt-5-codex": Retirement(date(2026, 7, 23), "gpt-5.4"),
    "gpt-5.1-codex": Retirement(date(2026, 7, 23), "gpt-5.4"),
    "gpt-5.1-codex-max": Retirement(date(2026, 7, 23), "gpt-5.4"),
    "gpt-5.1-codex-mini": Retirement(date(2026, 7, 23), "gpt-5.4-mini"),
    "gpt-5.2-codex": Retirement(date(2026, 7, 23), "gpt-5.4"),
    "o3-deep-research": Retirement(date(2026, 7, 23), "gpt-5.4-pro"),
    "o4-mini-deep-research": Retirement(date(2026, 7, 23), "gpt-5.4-pro"),
    "gpt-5.2-chat-latest": Retirement(date(2026, 8, 10), "gpt-5.5"),
    "gpt-5.3-chat-latest": Retirement(date(2026, 8, 10), "gpt-5.5"),
    "gpt-3.5-turbo": Retirement(date(2026, 10, 23), "gpt-4.1-mini"),
    "gpt-3.5-turbo-0125": Retirement(date(2026, 10, 23), "gpt-4.1-mini"),
    "gpt-4": Retirement(date(2026, 10, 23), "gpt-5.4"),
    "gpt-4-0613": Retirement(date(2026, 10, 23), "gpt-5.4"),
    "gpt-4-1106-preview": Retirement(date(2026, 10, 23), "gpt-5.4"),
    "gpt-4-turbo": Retirement(date(2026, 10, 23), "gpt-5.4"),
    "gpt-4-turbo-2024-04-09": Retirement(date(2026, 10, 23), "gpt-5.4"),
    "gpt-4o-2024-05-13": Retirement(date(2026, 10, 23), "gpt-5.4"),
    "gpt-4.1-nano": Retirement(date(2026, 10, 23), "gpt-5.4-nano"),
    "gpt-4.1-nano-2025-04-14": Retirement(date(2026, 10, 23), "gpt-5.4-nano"),
    "o1": Retirement(date(2026, 10, 23), "gpt-5.4"),
    "o1-2024-12-17": Retirement(date(2026, 10, 23), "gpt-5.4"),
    "o1-pro": Retirement(date(2026, 10, 23), "gpt-5.4-pro"),
    "o3-mini": Retirement(date(2026, 10, 23), "gpt-5.4-mini"),
    "o3-mini-2025-01-31": Retirement(date(2026, 10, 23), "gpt-5.4-mini"),
    "o4-mini": Retirement(date(2026, 10, 23), "gpt-5.4-mini"),
    "o4-mini-2025-04-16": Retirement(date(2026, 10, 23), "gpt-5.4-mini"),
    # Announced, not shut down yet.
    "gpt-image-1-mini": Retirement(date(2026, 12, 1), "gpt-image-2.6-flare"),
    "gpt-image-1.5": Retirement(date(2026, 12, 1), "gpt-image-2.6-sunburst"),
    "chatgpt-image-latest": Retirement(date(2026, 12, 1), "gpt-image-2.6-sunburst"),
    "gpt-5": Retirement(date(2026, 12, 11), "gpt-6.1-sol"),
    "gpt-5-2025-08-07": Retirement(date(2026, 12, 11), "gpt-6.1-sol"),
    "gpt-5-mini": Retirement(date(2026, 12, 11), "gpt-6.1-terra"),
    "gpt-5-mini-2025-08-07": Retirement(date(2026, 12, 11), "gpt-6.1-terra"),
    "gpt-5-nano": Retirement(date(2026, 12, 11), "gpt-6-luna"),
    "gpt-5-nano-2025-08-07": Retirement(date(2026, 12, 11), "gpt-6-luna"),
    "gpt-5-pro": Retirement(date(2026, 12, 11), "gpt-6.1-sol"),
    "o3": Retirement(date(2026, 12, 11), "gpt-6.1-sol"),
    "o3-2025-04-16": Retirement(date(2026, 12, 11), "gpt-6.1-sol"),
    "o3-pro": Retirement(date(2026, 12, 11), "gpt-6.1-sol"),
    "gpt-4o": Retirement(date(2027, 1, 14), "gpt-6.1-sol"),
    "gpt-4o-2024-08-06": Retirement(date(2027, 1, 14), "gpt-6.1-sol"),
    "gpt-4o-2024-11-20": Retirement(date(2027, 1, 14), "gpt-6.1-sol"),
    "gpt-4o-mini": Retirement(date(2027, 1, 14), "gpt-6-luna"),
    "gpt-4o-mini-2024-07-18": Retirement(date(2027, 1, 14), "gpt-6-luna"),
    "gpt-4.1": Retirement(date(2027, 1, 14), "gpt-6.1-sol"),
    "gpt-4.1-2025-04-14": Retirement(date(2027, 1, 14), "gpt-6.1-sol"),
    "gpt-4.1-mini": Retirement(date(2027, 1, 14), "gpt-6-luna"),
    "gpt-4.1-mini-2025-04-14": Retirement(date(2027, 1, 14), "gpt-6-luna"),
}


OPENAI_HOSTS = frozenset({"api.openai.com"})


def applies_to(base_url: str) -> bool:
    """Whether OpenAI's retirement table speaks for a connection with this base URL."""
    try:
        host = urlsplit(base_url).hostname or ""
    except ValueError:
        return False
    return host in OPENAI_HOSTS


def retirement_for(model_id: str) -> Retirement | None:
    """The model's retirement as the table has it; a fine-tuned model follows its base."""
    return RETIREMENTS.get(model_id) or RETIREMENTS.get(fine_tuned_from(model_id))


def replacement_for(model_id: str) -> str:
    """The suggested replacement: OpenAI's, followed while it is itself retired (at most a few
    steps, so a loop in the table cannot hang a page)."""
    found = retirement_for(model_id)
    replacement = found.replacement if found else ""
    for _step in range(5):
        onward = RETIREMENTS.get(replacement)
        if onward is None or not onward.replacement:
            break
        replacement = onward.replacement
    return replacement
