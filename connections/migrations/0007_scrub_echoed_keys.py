# Written by hand: a data migration, no schema change.

import json

from django.core.exceptions import ImproperlyConfigured
from django.db import migrations

from connections import crypto
from provider.answer import header_int, header_text
from provider.jsonread import load_json
from provider.secrets import mask_secrets, safe_identifier, safe_request_id


def _secrets(connection) -> tuple[str, ...]:
    """The connection's keys, where they still decrypt (the historical model has none of the
    model's methods, so the context is written out as `Connection._context` builds it)."""
    secrets = []
    for field in ("api_key", "admin_key"):
        token = getattr(connection, f"{field}_encrypted")
        if not token:
            continue
        try:
            context = f"connections.Connection:{connection.pk}:{field}"
            secrets.append(crypto.decrypt(token, context=context))
        except (crypto.DecryptionError, ImproperlyConfigured):
            continue
    return tuple(secrets)


def _rate_limit(values: dict) -> dict:
    """Only counts and durations, as the client now keeps them."""
    kept = dict(values)
    for name, value in values.items():
        if name.startswith(("limit_", "remaining_")):
            kept[name] = value if isinstance(value, int) else header_int(str(value))
        elif name.startswith("reset_"):
            kept[name] = header_text(value) if isinstance(value, str) else None
    return kept


def _document(value, secrets):
    return load_json(json.dumps(value).encode(), secrets) if secrets else value


def scrub_echoed_keys(apps, schema_editor):
    """A provider that echoed the key could have had it stored before the client masked every
    field: in an error's code, request id or message, in the rate limits, in the models list.
    Each is cleaned the way the client now cleans what it reads."""
    alias = schema_editor.connection.alias
    Connection = apps.get_model("connections", "Connection")
    ErrorEvent = apps.get_model("connections", "ConnectionErrorEvent")
    for connection in Connection.objects.using(alias).iterator():
        secrets = _secrets(connection)
        values = {
            "last_error": mask_secrets(connection.last_error, *secrets),
            "rate_limit": _rate_limit(connection.rate_limit or {}),
            "models_cache": _document(connection.models_cache, secrets),
            "month_spend": _document(connection.month_spend, secrets),
        }
        changed = {
            name: value for name, value in values.items() if getattr(connection, name) != value
        }
        if changed:
            Connection.objects.using(alias).filter(pk=connection.pk).update(**changed)
        for event in ErrorEvent.objects.using(alias).filter(connection_id=connection.pk):
            values = {
                "code": safe_identifier(event.code, *secrets) or "",
                "request_id": safe_request_id(event.request_id, *secrets) or "",
                "message": mask_secrets(event.message, *secrets),
            }
            changed = {
                name: value for name, value in values.items() if getattr(event, name) != value
            }
            if changed:
                ErrorEvent.objects.using(alias).filter(pk=event.pk).update(**changed)


class Migration(migrations.Migration):
    dependencies = [
        ("connections", "0006_run_api_detection_reason"),
    ]

    operations = [
        migrations.RunPython(scrub_echoed_keys, migrations.RunPython.noop, elidable=True),
    ]
