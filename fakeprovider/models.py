"""Models: ``GET /v1/models`` and ``GET /v1/models/{model}``, from a realistic list."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from fakeprovider.router import FakeRequest, Reply, Router

if TYPE_CHECKING:
    from fakeprovider.server import FakeProvider

# id, created, owned_by, extra fields. Real ids and dates; shutdown_date as the spec has it.
MODELS: list[tuple[str, int, str, dict[str, Any]]] = [
    ("gpt-4o", 1715367049, "system", {}),
    ("gpt-4o-mini", 1721172741, "system", {}),
    ("gpt-4.1", 1744316542, "system", {}),
    ("gpt-4.1-mini", 1744318173, "system", {}),
    ("o3", 1744225308, "system", {}),
    ("o4-mini", 1744225351, "system", {}),
    ("gpt-3.5-turbo", 1677610602, "openai", {"shutdown_date": "2025-09-15"}),
    ("gpt-4-0613", 1686588896, "openai", {"shutdown_date": "2099-06-06"}),
    ("dall-e-3", 1698785189, "system", {}),
    ("whisper-1", 1677532384, "openai-internal", {}),
    ("text-embedding-3-small", 1705948997, "system", {}),
    ("tts-1", 1681940951, "openai-internal", {}),
]


def initial_models() -> dict[str, dict[str, Any]]:
    return {
        model_id: {"id": model_id, "object": "model", "created": created, "owned_by": owner} | extra
        for model_id, created, owner, extra in MODELS
    }


def model_not_found(model: str) -> Reply:
    return Reply.error(
        404,
        f"The model `{model}` does not exist or you do not have access to it.",
        "invalid_request_error",
        "model_not_found",
        "model",
    )


def list_models(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
    return Reply.json({"object": "list", "data": list(fake.state["models"].values())})


def retrieve_model(fake: FakeProvider, request: FakeRequest, match: re.Match[str]) -> Reply:
    model = fake.state["models"].get(match["model"])
    if model is None:
        return model_not_found(match["model"])
    return Reply.json(model)


def register(router: Router) -> None:
    router.state("models", initial_models)
    router.add("GET", r"/v1/models", list_models)
    router.add("GET", r"/v1/models/(?P<model>[^/]+)", retrieve_model)
