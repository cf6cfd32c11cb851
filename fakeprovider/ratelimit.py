"""A rate limit that counts down, as the provider's does: off unless a test sets one.

    fake.rate_limit = RateLimit(limit_requests=1000, remaining_requests=60, window_seconds=60)

Each authorised request then takes one request and `tokens_per_request` tokens from what is
left in the current window; the answer's `x-ratelimit-*` headers say what is left and when the
window ends (read from ``fake.clock``), and once nothing is left the fake answers 429
`rate_limit_exceeded` itself, as the provider does, until the window ends and the counts start
again from `remaining_requests` and `remaining_tokens`. `refused` counts those 429s.

Without one (the default), every answer carries the fixed headers of `fakeprovider.server`.
"""

from __future__ import annotations

from dataclasses import dataclass

from fakeprovider.router import Reply

__all__ = ["RateLimit", "reset_text"]


def reset_text(seconds: float) -> str:
    """A duration as the provider writes it: "12ms", "1.5s", "6m0s"."""
    if seconds < 1:
        return f"{max(0, round(seconds * 1000))}ms"
    minutes, rest = divmod(seconds, 60)
    rest_text = f"{rest:.1f}".removesuffix(".0")
    return f"{int(minutes)}m{rest_text}s" if minutes else f"{rest_text}s"


@dataclass
class RateLimit:
    limit_requests: int = 1000
    remaining_requests: int = 1000
    limit_tokens: int = 1_000_000
    remaining_tokens: int = 1_000_000
    tokens_per_request: int = 25
    window_seconds: float = 60.0
    refused: int = 0
    _window_start: float | None = None
    _requests: int = 0
    _tokens: int = 0

    def take(self, now: float) -> tuple[Reply | None, dict[str, str]]:
        """For one request at `now`: the 429 to answer instead (or None), and the headers."""
        if self._window_start is None or now >= self._window_start + self.window_seconds:
            self._window_start = now
            self._requests, self._tokens = self.remaining_requests, self.remaining_tokens
        refusal = None
        if self._requests <= 0 or self._tokens < self.tokens_per_request:
            self.refused += 1
            what = "requests" if self._requests <= 0 else "tokens"
            refusal = Reply.error(
                429,
                f"Rate limit reached for gpt-4o in organization org-fake on {what} per min: "
                f"Limit {getattr(self, 'limit_' + what)}. Please try again later.",
                what,
                "rate_limit_exceeded",
            )
        else:
            self._requests -= 1
            self._tokens -= self.tokens_per_request
        reset = reset_text(self._window_start + self.window_seconds - now)
        headers = {
            "x-ratelimit-limit-requests": str(self.limit_requests),
            "x-ratelimit-remaining-requests": str(self._requests),
            "x-ratelimit-reset-requests": reset,
            "x-ratelimit-limit-tokens": str(self.limit_tokens),
            "x-ratelimit-remaining-tokens": str(self._tokens),
            "x-ratelimit-reset-tokens": reset,
        }
        if refusal is not None:
            headers["retry-after"] = str(
                max(1, round(self._window_start + self.window_seconds - now))
            )
        return refusal, headers
