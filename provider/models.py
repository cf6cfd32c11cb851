"""Reading the models answers (`GET /models`, `GET /models/{id}`)."""

from __future__ import annotations

from typing import Any

from provider.answer import Answer
from provider.endpoint import path_segment
from provider.errors import ErrorKind, ProviderError

__all__ = ["bad_shape", "model_path", "parse_model", "parse_model_list"]


def _is_model(item: Any) -> bool:
    return isinstance(item, dict) and isinstance(item.get("id"), str) and bool(item["id"])


def bad_shape(answer: Answer, expected: str) -> ProviderError:
    return ProviderError(
        ErrorKind.BAD_RESPONSE,
        f"The answer is JSON but not {expected} as the API describes it.",
        status=answer.status,
        request_id=answer.request_id,
    )


def parse_model_list(answer: Answer) -> list[dict[str, Any]]:
    """The models of a `GET /models` answer, each an object with a string id."""
    data = answer.data.get("data") if isinstance(answer.data, dict) else None
    if not isinstance(data, list) or not all(_is_model(item) for item in data):
        raise bad_shape(answer, "a list of models")
    return data


def parse_model(answer: Answer) -> dict[str, Any]:
    """The model of a `GET /models/{id}` answer."""
    if not _is_model(answer.data):
        raise bad_shape(answer, "a model")
    return answer.data


def model_path(model_id: str) -> str:
    """The path of one model; ProviderError MODEL_NOT_FOUND when no id was given."""
    try:
        return f"/models/{path_segment(model_id)}"
    except ValueError:
        raise ProviderError(ErrorKind.MODEL_NOT_FOUND, "No model id was given.") from None
