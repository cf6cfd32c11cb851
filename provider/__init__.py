"""A plain library for talking to OpenAI-compatible servers: no ORM, no web request, no
settings; whoever uses it passes its configuration in.

- `endpoint`: where and as whom to call (`Endpoint`), and each request's URL and headers
- `secrets`: masking keys in whatever comes back; safe ids and codes
- `jsonread`: JSON fit to store and show; the fields of an error answer
- `body`: bounded, inflated bodies
- `policy`: the deadline and the retry policy (`CallPlan`)
- `errors`: `ErrorKind`, `ProviderError`, `classify`
- `urlguard`: the SSRF guard (`URLGuard`) and its network backends
- `pool`: the pooled HTTP clients; `attempt`: one attempt's outcome and log line
- `client` (`ProviderClient`) and `aclient` (`AsyncProviderClient`): one policy, two ways
- `models`, `costs`, `runapi`: reading answers, and detecting the run API
"""
