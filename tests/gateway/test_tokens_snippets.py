"""The examples on a new token's page are code that runs: valid Python, a curl command the
shell splits as meant, whatever odd characters a model id has."""

import ast
import json
import shlex

import pytest

from gateway.scopes import Scope
from gateway.snippets import example_model, snippets

BASE = "https://tablero.example.com/v1"
TOKEN = "tbl_abcdefghij_" + "A" * 43


@pytest.mark.parametrize("model", ["gpt-4o-mini", "ft:gpt-4o:acme:x'y\"z:1", "modèle/α"])
def test_the_chat_examples(model):
    found = snippets(base_url=BASE, token=TOKEN, scopes=frozenset(Scope), model=model)

    tree = ast.parse(found.python)
    call = next(
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "OpenAI"
    )
    kwargs = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
    assert kwargs == {"base_url": BASE, "api_key": TOKEN}
    assert f"model={json.dumps(model, ensure_ascii=False)}" in found.python

    assert f"baseURL: {json.dumps(BASE)}, apiKey: {json.dumps(TOKEN)}" in found.node
    assert f"model: {json.dumps(model, ensure_ascii=False)}" in found.node

    argv = shlex.split(found.curl.replace("\\\n", " "))
    assert argv[:2] == ["curl", f"{BASE}/chat/completions"]
    assert argv[argv.index("-H") + 1] == f"Authorization: Bearer {TOKEN}"
    body = json.loads(argv[argv.index("-d") + 1])
    assert body["model"] == model


def test_a_read_only_token_lists_models():
    found = snippets(base_url=BASE, token=TOKEN, scopes=frozenset({Scope.MODELS}), model="gpt-4o")
    ast.parse(found.python)
    assert "client.models.list()" in found.python and "chat" not in found.python
    assert "client.models.list()" in found.node
    argv = shlex.split(found.curl.replace("\\\n", " "))
    assert argv == ["curl", f"{BASE}/models", "-H", f"Authorization: Bearer {TOKEN}"]


def test_a_model_is_always_named():
    found = snippets(base_url=BASE, token=TOKEN, scopes=frozenset(Scope), model="")
    assert 'model="gpt-4o-mini"' in found.python


@pytest.mark.parametrize(
    ("allowed", "offered", "expected"),
    [
        (["o3"], {"gpt-4o-mini"}, "o3"),
        ([], {"dall-e-2", "gpt-4o-mini", "babbage-002"}, "gpt-4o-mini"),
        ([], {"dall-e-2", "gpt-4.1", "babbage-002"}, "gpt-4.1"),
        ([], {"llama-3", "mistral"}, "llama-3"),
        ([], set(), "gpt-4o-mini"),
    ],
)
def test_the_examples_name_a_model_that_chats(allowed, offered, expected):
    assert example_model(allowed=allowed, offered=offered) == expected
