"""What the gateway forwards still passes the provider's spec: the official SDK calls Tablero's
/v1/ with a gateway token, the gateway forwards to Prism (the spec as a mock that checks every
request it gets), and Prism finds nothing to reject."""

import httpx
import openai
import pytest

from gateway import grants
from gateway.scopes import Scope
from gateway.services import token_create
from tests.connections.helpers import make_connection
from tests.contract.test_assistants_contract import refused
from tests.gateway.conftest import settle

pytestmark = [pytest.mark.contract, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def through_gateway(_live_gateway, prism, team, owner, member):
    """An SDK client whose calls go through the gateway to Prism, and the gateway's base URL
    with the token's value."""
    from config.asgi import gateway as app

    grants.clear_local()
    app.forget_local()
    connection = make_connection(team, name="Prism", base_url=prism.base_url, created_by=owner)
    _token, value = token_create(
        team=team,
        connection=connection,
        name="contract",
        created_by=member,
        owner=member,
        scopes=list(Scope),
    )
    client = openai.OpenAI(api_key=value, base_url=_live_gateway.url, max_retries=0)
    yield client, _live_gateway.url, value
    client.close()
    settle()


def test_models_through_the_gateway_pass_the_spec(through_gateway, prism):
    client, _url, _value = through_gateway
    models = client.models.list()
    assert models.data
    client.models.retrieve("gpt-4o-mini")
    assert prism.rejections() == []


def test_responses_through_the_gateway_pass_the_spec(through_gateway, prism):
    client, _url, _value = through_gateway
    response = client.responses.create(
        model="gpt-4o-mini", input="What is 2 + 2?", instructions="Be brief.", background=True
    )
    client.responses.retrieve(response.id)
    client.responses.cancel(response.id)
    assert refused(prism) == []  # Prism's complaints about its own example answers aside


def test_a_request_that_breaks_the_spec_is_forwarded_and_reported(through_gateway, prism):
    """Control: the gateway passes a body on unchanged, so Prism sees (and reports) the broken
    request a caller sent."""
    _client, url, value = through_gateway
    httpx.post(
        f"{url}/responses",
        headers={"Authorization": f"Bearer {value}"},
        json={"model": 5, "input": "x"},
    )
    assert any("UNPROCESSABLE_ENTITY" in line for line in prism.rejections())
