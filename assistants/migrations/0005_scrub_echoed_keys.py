# Written by hand: a data migration, no schema change.

from django.core.exceptions import ImproperlyConfigured
from django.db import migrations

from connections import crypto
from provider.secrets import mask_secrets, safe_identifier


def _secrets(connection) -> tuple[str, ...]:
    """The connection's keys, where they still decrypt (the context written out as
    `Connection._context` builds it: the historical model has none of its methods)."""
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


def scrub_echoed_keys(apps, schema_editor):
    """A run's error code and message, and an assistant's last error, could hold a key a
    provider echoed before the client masked every field: cleaned as the client now does."""
    alias = schema_editor.connection.alias
    Connection = apps.get_model("connections", "Connection")
    Assistant = apps.get_model("assistants", "Assistant")
    Run = apps.get_model("assistants", "Run")
    for connection in Connection.objects.using(alias).iterator():
        secrets = _secrets(connection)
        runs = Run.objects.using(alias).filter(connection_id=connection.pk)
        for run in runs.exclude(last_error_code="", last_error_message="").iterator():
            values = {
                "last_error_code": safe_identifier(run.last_error_code, *secrets) or "",
                "last_error_message": mask_secrets(run.last_error_message, *secrets),
            }
            changed = {name: value for name, value in values.items() if getattr(run, name) != value}
            if changed:
                Run.objects.using(alias).filter(pk=run.pk).update(**changed)
        assistants = Assistant.objects.using(alias).filter(connection_id=connection.pk)
        for assistant in assistants.exclude(last_error="").iterator():
            last_error = mask_secrets(assistant.last_error, *secrets)
            if last_error != assistant.last_error:
                Assistant.objects.using(alias).filter(pk=assistant.pk).update(last_error=last_error)


class Migration(migrations.Migration):
    dependencies = [
        ("assistants", "0004_provider_ids_kept_whole"),
        ("connections", "0007_scrub_echoed_keys"),
    ]

    operations = [
        migrations.RunPython(scrub_echoed_keys, migrations.RunPython.noop, elidable=True),
    ]
