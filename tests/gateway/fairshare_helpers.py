"""What the fair-share tests and bench/fairshare.py build: the provider's rate-limit headers of
an answer, and a gateway call as `gateway.proxy` hands it to `gateway.fairshare`."""

import uuid
from datetime import UTC, datetime

from gateway.recorder import Call


def headers(limit="1000", remaining="50", reset="30s", kind="requests", **extra):
    found = [
        (f"x-ratelimit-limit-{kind}".encode(), limit.encode()),
        (f"x-ratelimit-remaining-{kind}".encode(), remaining.encode()),
        (f"x-ratelimit-reset-{kind}".encode(), reset.encode()),
    ]
    return found + [(name.encode(), value.encode()) for name, value in extra.items()]


def call(connection_id, token_id) -> Call:
    return Call(
        team_id=uuid.uuid4(),
        token_id=token_id,
        user_id=None,
        connection_id=connection_id,
        family="inference",
        method="POST",
        path="chat/completions",
        model="gpt-4o",
        status=0,
        refused=False,
        request_id="",
        streamed=False,
        latency_ms=None,
        first_byte_ms=None,
        input_tokens=None,
        cached_tokens=None,
        output_tokens=None,
        created_at=datetime.now(UTC),
        address=None,
    )
