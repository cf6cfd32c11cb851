def test_models_list(sdk, make_token):
    client = sdk(make_token())
    ids = [model.id for model in client.models.list()]
    assert "gpt-4o" in ids
