"""Re-encrypt every stored secret with the first key of TABLERO_ENCRYPTION_KEYS.

Rotation: put the new key first, keep the old ones after it, run this command, then remove
the old keys. Safe to run twice: values already under the first key are left alone.
"""

from django.core.management.base import BaseCommand, CommandError

from connections import crypto
from connections.management.secrets import stored_secrets


class Command(BaseCommand):
    help = "Re-encrypt every stored provider key with the first TABLERO_ENCRYPTION_KEYS key."

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Count what would change without writing anything.",
        )

    def handle(self, *args, dry_run: bool = False, **options) -> None:
        reencrypted = current = changed_meanwhile = 0
        unreadable = []
        for secret in stored_secrets():
            try:
                token, changed = crypto.reencrypt(secret.token, context=secret.context)
            except crypto.DecryptionError:
                unreadable.append(secret)
                continue
            if not changed:
                current += 1
                continue
            if dry_run:
                reencrypted += 1
                continue
            # A plain UPDATE: neither `updated_at` nor any other column changes. Only while
            # the row still holds the token read: a key replaced or removed meanwhile (already
            # under the first key) must not be overwritten with the old one.
            written = (
                type(secret.instance)
                .objects.filter(pk=secret.instance.pk, **{secret.column: secret.token})
                .update(**{secret.column: token})
            )
            if written:
                reencrypted += 1
            else:
                changed_meanwhile += 1
        verb = "Would re-encrypt" if dry_run else "Re-encrypted"
        self.stdout.write(f"{verb}: {reencrypted}")
        self.stdout.write(f"Already current: {current}")
        if changed_meanwhile:
            self.stdout.write(f"Changed while running (left as they are): {changed_meanwhile}")
        self.stdout.write(f"Unreadable: {len(unreadable)}")
        for secret in unreadable:
            self.stderr.write(f"Unreadable: {secret.describe()}")
        if unreadable:
            raise CommandError(
                f"{len(unreadable)} stored secrets do not decrypt with any configured key; they "
                "were left as they are. Enter those keys again (Replace key)."
            )
