"""Which endpoint family a request to the gateway belongs to, from its method and path.

A token carries a set of families (its scopes). A path that belongs to none of them, the
organization and admin endpoints above all, is never forwarded, whatever the token.
"""

from __future__ import annotations

import re

from django.db import models
from django.utils.translation import gettext_lazy as _

__all__ = ["READ_ONLY_SCOPES", "SHORT_LABELS", "Scope", "family_of"]


class Scope(models.TextChoices):
    MODELS = "models", _("Models (list and look up)")
    INFERENCE = (
        "inference",
        _(
            "Inference: chat completions, responses, completions, embeddings, moderations, images, "
            "audio"
        ),
    )
    FILES = "files", _("Files and uploads")
    ASSISTANTS = "assistants", _("Assistants, threads and vector stores")
    BATCHES = "batches", _("Batches")


# The word a table shows for each scope (the label above is its title).
SHORT_LABELS = {
    Scope.MODELS: _("models"),
    Scope.INFERENCE: _("inference"),
    Scope.FILES: _("files"),
    Scope.ASSISTANTS: _("assistants"),
    Scope.BATCHES: _("batches"),
}

# What a viewer may hold.
READ_ONLY_SCOPES = frozenset({Scope.MODELS})

# First path segment (after /v1/) → family. Anything not listed is refused.
_FAMILIES: dict[str, Scope] = {
    "models": Scope.MODELS,
    "chat": Scope.INFERENCE,
    "responses": Scope.INFERENCE,
    "conversations": Scope.INFERENCE,
    "completions": Scope.INFERENCE,
    "embeddings": Scope.INFERENCE,
    "moderations": Scope.INFERENCE,
    "images": Scope.INFERENCE,
    "audio": Scope.INFERENCE,
    "files": Scope.FILES,
    "uploads": Scope.FILES,
    "assistants": Scope.ASSISTANTS,
    "threads": Scope.ASSISTANTS,
    "vector_stores": Scope.ASSISTANTS,
    "batches": Scope.BATCHES,
}

# A path the gateway forwards: plain segments of letters, digits and - _ . (no dot segments,
# no empty segment, no percent-encoding, no backslash).
_SEGMENT = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_\-.:]*")


def clean_segments(path: str) -> list[str] | None:
    """The segments of a path below /v1/, or None if any could leave the base URL or is odd."""
    if not path or path.startswith("/") or path.endswith("/"):
        return None
    segments = path.split("/")
    for segment in segments:
        if segment in {".", ".."} or not _SEGMENT.fullmatch(segment):
            return None
    return segments


def family_of(method: str, path: str) -> Scope | None:
    """The family of `method path` (path relative to /v1/, without query), or None when the
    gateway never forwards it."""
    segments = clean_segments(path)
    if segments is None:
        return None
    family = _FAMILIES.get(segments[0])
    if family is Scope.MODELS and method.upper() not in {"GET", "HEAD"}:
        return None  # deleting a fine-tuned model is an organization's act
    return family
