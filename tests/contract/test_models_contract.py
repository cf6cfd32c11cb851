"""The models calls, checked against the provider's OpenAPI spec by Prism."""

import pytest

from provider.client import ProviderClient
from provider.errors import ErrorKind, ProviderError
from tests.provider.helpers import LOOPBACK

pytestmark = pytest.mark.contract

DYNAMIC = {"Prefer": "dynamic=true"}


def test_list_models_is_accepted(prism):
    client = ProviderClient(prism.endpoint(), guard=LOOPBACK)
    models = client.list_models()
    assert models and all(isinstance(model["id"], str) for model in models)
    assert prism.rejections() == []


def test_headers_of_an_organization_and_project_are_accepted(prism):
    client = ProviderClient(
        prism.endpoint(organization="org-abc", project="proj_abc"), guard=LOOPBACK
    )
    client.list_models()
    assert prism.rejections() == []


@pytest.mark.parametrize("model_id", ["gpt-4o-mini", "ft:gpt-4o-mini:acme:suffix:abc123"])
def test_retrieve_model_is_accepted(prism, model_id):
    model = ProviderClient(prism.endpoint(), guard=LOOPBACK).retrieve_model(model_id)
    assert isinstance(model["id"], str)
    assert prism.rejections() == []


def test_the_prism_fixture_sees_a_rejected_request(prism):
    """Control: a request that breaks the spec (model must be a string) is reported."""
    client = ProviderClient(prism.endpoint(), guard=LOOPBACK, max_retries=0)
    with pytest.raises(ProviderError):
        client.request("POST", "/responses", json={"model": 5})
    assert any("UNPROCESSABLE_ENTITY" in line for line in prism.rejections())


@pytest.mark.parametrize("attempt", range(15))
def test_random_answers_do_not_crash_the_client(prism, attempt):
    """Data that fits the schema, extra fields included: data or BAD_RESPONSE, nothing else."""
    client = ProviderClient(prism.endpoint(), guard=LOOPBACK, extra_headers=DYNAMIC, max_retries=0)
    try:
        models = client.list_models()
    except ProviderError as error:
        assert error.kind == ErrorKind.BAD_RESPONSE
    else:
        assert all(isinstance(model["id"], str) for model in models)
    try:
        model = client.retrieve_model("gpt-4o")
    except ProviderError as error:
        assert error.kind == ErrorKind.BAD_RESPONSE
    else:
        assert isinstance(model["id"], str)
    assert prism.rejections() == []


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (401, ErrorKind.INVALID_KEY),
        (403, ErrorKind.PERMISSION_DENIED),
        (404, ErrorKind.NOT_FOUND),
        (429, ErrorKind.RATE_LIMITED),
        (500, ErrorKind.SERVER_ERROR),
        (503, ErrorKind.OVERLOADED),
    ],
)
def test_declared_error_answers_are_classified(prism_errors, status, kind):
    client = ProviderClient(
        prism_errors.endpoint(),
        guard=LOOPBACK,
        extra_headers={"Prefer": f"code={status}"},
        max_retries=0,
    )
    with pytest.raises(ProviderError) as caught:
        client.list_models()
    assert caught.value.kind == kind
    assert caught.value.status == status
    assert caught.value.message
    assert prism_errors.rejections() == []
