"""What the fair-share tests build: the provider's rate-limit headers of
an answer, and a gateway call as `gateway.proxy` hands it to `gateway.fairshare`."""

import uuid

from gateway.recorder import Call


def headers(limit="1000", remaining="50", reset="30s", kind="requests", **extra):
    found = [
        (f"x-ratelimit-limit-{kind}".encode(), limit.encode()),
        (f"x-ratelimit-remaining-{kind}".encode(), remaining.encode()),
        (f"x-ratelimit-reset-{kind}".encode(), reset.encode()),
    ]
    return found + [(name.encode(), value.encode()) for name, value in extra.items()]


def call(connection_id, token_id) -> Call:
    """A chat call of `token_id` on `connection_id`, let through, as the proxy hands it on."""
    found = Call.begin(
        team_id=uuid.uuid4(),
        token_id=token_id,
        user_id=None,
        connection_id=connection_id,
        method="POST",
        path="chat/completions",
        address=None,
    )
    found.family, found.model, found.refused = "inference", "gpt-4o", False
    return found
