"""The ready-to-paste examples on a new token's page: Python and Node `openai` SDKs, curl.

Plain functions of the site's base URL, the token and a model, so they can be read (and
tested) apart from the page. Every value is written as a JSON string literal, which Python and
JavaScript read the same way, and the curl body is quoted for the shell.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

from gateway.scopes import Scope

__all__ = ["Snippets", "example_model", "snippets"]

FALLBACK_MODEL = "gpt-4o-mini"


def example_model(*, allowed: list[str], offered: set[str]) -> str:
    """The model the examples name: the token's first allowed one, else one the connection
    offers that answers chat (the usual small one if there, a gpt- one), else a common one."""
    if allowed:
        return allowed[0]
    if FALLBACK_MODEL in offered or not offered:
        return FALLBACK_MODEL
    chat = sorted(m for m in offered if m.startswith("gpt-"))
    return chat[0] if chat else sorted(offered)[0]


@dataclass(frozen=True)
class Snippets:
    python: str
    node: str
    curl: str


def _s(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)


def snippets(*, base_url: str, token: str, scopes: frozenset[Scope], model: str) -> Snippets:
    """Examples calling the gateway at `base_url` (ending in /v1) with `token`: a chat
    completion when the token may run models, else the list of models."""
    model = model or FALLBACK_MODEL
    if Scope.INFERENCE in scopes:
        python = (
            "from openai import OpenAI\n\n"
            f"client = OpenAI(base_url={_s(base_url)}, api_key={_s(token)})\n"
            "response = client.chat.completions.create(\n"
            f"    model={_s(model)},\n"
            '    messages=[{"role": "user", "content": "Hello!"}],\n'
            ")\n"
            "print(response.choices[0].message.content)\n"
        )
        node = (
            'import OpenAI from "openai";\n\n'
            f"const client = new OpenAI({{ baseURL: {_s(base_url)}, apiKey: {_s(token)} }});\n"
            "const response = await client.chat.completions.create({\n"
            f"  model: {_s(model)},\n"
            '  messages: [{ role: "user", content: "Hello!" }],\n'
            "});\n"
            "console.log(response.choices[0].message.content);\n"
        )
        body = json.dumps(
            {"model": model, "messages": [{"role": "user", "content": "Hello!"}]},
            ensure_ascii=False,
        )
        curl = (
            f"curl {shlex.quote(base_url + '/chat/completions')} \\\n"
            f"  -H {shlex.quote('Authorization: Bearer ' + token)} \\\n"
            '  -H "Content-Type: application/json" \\\n'
            f"  -d {shlex.quote(body)}\n"
        )
    else:
        python = (
            "from openai import OpenAI\n\n"
            f"client = OpenAI(base_url={_s(base_url)}, api_key={_s(token)})\n"
            "for model in client.models.list():\n"
            "    print(model.id)\n"
        )
        node = (
            'import OpenAI from "openai";\n\n'
            f"const client = new OpenAI({{ baseURL: {_s(base_url)}, apiKey: {_s(token)} }});\n"
            "for await (const model of client.models.list()) {\n"
            "  console.log(model.id);\n"
            "}\n"
        )
        curl = (
            f"curl {shlex.quote(base_url + '/models')} \\\n"
            f"  -H {shlex.quote('Authorization: Bearer ' + token)}\n"
        )
    return Snippets(python=python, node=node, curl=curl)
