"""List the stored secrets that do not decrypt with the current keys. Never prints a value."""

from django.core.management.base import BaseCommand, CommandError

from connections import crypto
from connections.management.secrets import stored_secrets


class Command(BaseCommand):
    help = (
        "Check that every stored provider key decrypts with TABLERO_ENCRYPTION_KEYS; name the "
        "rows that do not (exit code 1 if any)."
    )

    def handle(self, *args, **options) -> None:
        checked = 0
        unreadable = []
        for secret in stored_secrets():
            checked += 1
            try:
                crypto.decrypt(secret.token, context=secret.context)
            except crypto.DecryptionError:
                unreadable.append(secret)
        for secret in unreadable:
            self.stderr.write(f"Unreadable: {secret.describe()}")
        if unreadable:
            raise CommandError(
                f"{len(unreadable)} of {checked} stored secrets do not decrypt. Enter those keys "
                "again (Replace key), or add the old encryption key back to "
                "TABLERO_ENCRYPTION_KEYS."
            )
        self.stdout.write(self.style.SUCCESS(f"All {checked} stored secrets decrypt."))
