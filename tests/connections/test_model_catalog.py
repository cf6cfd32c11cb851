"""The rule table that says what a model is for, and the table of OpenAI's retirements
(connections/model_catalog.py)."""

from datetime import date

import pytest

from connections import model_catalog
from connections.model_catalog import Purpose, classify


@pytest.mark.parametrize(
    ("model_id", "purpose", "assistants"),
    [
        ("gpt-4o-2024-08-06", Purpose.CHAT, True),
        ("chatgpt-4o-latest", Purpose.CHAT, True),
        ("gpt-4.1-nano", Purpose.CHAT, True),
        ("gpt-4-turbo", Purpose.CHAT, True),
        ("gpt-3.5-turbo-16k", Purpose.CHAT, True),
        ("GPT-4O", Purpose.CHAT, True),
        ("o1-pro", Purpose.REASONING, True),
        ("o3", Purpose.REASONING, True),
        ("o4-mini-2025-04-16", Purpose.REASONING, True),
        ("gpt-5.4-mini", Purpose.REASONING, True),
        ("codex-mini-latest", Purpose.REASONING, True),
        ("text-embedding-ada-002", Purpose.EMBEDDINGS, False),
        ("text-embedding-3-large", Purpose.EMBEDDINGS, False),
        ("whisper-1", Purpose.AUDIO, False),
        ("tts-1-hd", Purpose.AUDIO, False),
        ("gpt-4o-mini-tts", Purpose.AUDIO, False),
        ("gpt-4o-audio-preview", Purpose.AUDIO, False),
        ("gpt-4o-transcribe", Purpose.AUDIO, False),
        ("gpt-realtime-mini", Purpose.AUDIO, False),
        ("dall-e-2", Purpose.IMAGES, False),
        ("gpt-image-1", Purpose.IMAGES, False),
        ("omni-moderation-latest", Purpose.MODERATION, False),
        ("text-moderation-stable", Purpose.MODERATION, False),
        ("gpt-4o-search-preview", Purpose.CHAT, False),
        ("computer-use-preview", Purpose.CHAT, False),
        ("davinci-002", Purpose.OTHER, False),
        ("ft:gpt-4o-mini-2024-07-18:acme::abc123", Purpose.CHAT, True),
        ("openai/gpt-4o", Purpose.CHAT, True),
        ("meta-llama/Llama-3-8B", Purpose.OTHER, False),
        ("omni", Purpose.OTHER, False),
        ("", Purpose.OTHER, False),
    ],
)
def test_classify(model_id, purpose, assistants):
    assert classify(model_id) == (purpose, assistants)


def test_every_purpose_has_a_label_in_both_languages():
    from django.utils import translation

    with translation.override("es"):
        labels = [str(purpose.label) for purpose in Purpose]
    assert labels == [
        "Chat",
        "Razonamiento",
        "Embeddings",
        "Audio",
        "Imágenes",
        "Moderación",
        "Otros",
    ]


def test_the_table_is_applied_to_openai_only():
    assert model_catalog.applies_to("https://api.openai.com/v1")
    assert not model_catalog.applies_to("http://127.0.0.1:9/v1")
    assert not model_catalog.applies_to("https://example.openai.azure.com/openai")
    assert not model_catalog.applies_to("https://api.openai.com.evil.test/v1")
    assert not model_catalog.applies_to("http://[bad")


def test_a_retirement_and_its_replacement():
    assert model_catalog.retirement_for("o4-mini").shutdown == date(2026, 10, 23)
    assert model_catalog.replacement_for("o4-mini") == "gpt-5.4-mini"
    assert model_catalog.retirement_for("gpt-5.5") is None
    assert model_catalog.replacement_for("gpt-5.5") == ""


def test_a_replacement_that_is_itself_retired_is_followed():
    # chatgpt-4o-latest → gpt-5.1-chat-latest → gpt-5.3-chat-latest → gpt-5.5
    assert model_catalog.replacement_for("chatgpt-4o-latest") == "gpt-5.5"
    assert model_catalog.replacement_for("gpt-3.5-turbo") == "gpt-6-luna"


def test_a_fine_tuned_model_follows_its_base():
    found = model_catalog.retirement_for("ft:gpt-4o-mini-2024-07-18:acme::abc")
    assert found is not None and found.shutdown == date(2027, 1, 14)


def test_the_table_is_consistent():
    for model_id, retirement in model_catalog.RETIREMENTS.items():
        assert model_id == model_id.strip().lower()
        assert retirement.replacement != model_id
        # No replacement leads back to where it started.
        assert model_catalog.replacement_for(model_id) != model_id
