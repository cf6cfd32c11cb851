"""What the provider library's tests share."""

from provider.urlguard import URLGuard

# The guard of a site whose operator allows the fake provider (and Prism) on loopback.
LOOPBACK = URLGuard(allowed_hosts=("127.0.0.1",))
