"""System checks for connections."""

from django.core.checks import Error, register

from connections import crypto

GENERATE_KEY_HINT = (
    "Set TABLERO_ENCRYPTION_KEYS to one or more comma-separated Fernet keys, newest first. "
    "Generate one with: "
    'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
)


@register()
def check_encryption_keys(app_configs=None, **kwargs) -> list[Error]:
    """connections.E001: provider keys cannot be stored or read without a valid keyring."""
    return [
        Error(problem, hint=GENERATE_KEY_HINT, id="connections.E001")
        for problem in crypto.configuration_errors()
    ]
