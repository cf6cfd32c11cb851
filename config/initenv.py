"""Write a local `.env` with freshly generated secrets, once.

`make run` calls this so a newcomer configures nothing. An existing `.env` is never touched.
"""

import os
import secrets
import sys
from pathlib import Path

from cryptography.fernet import Fernet

TEMPLATE = """\
# Written by `make run` on first start for local development. Never commit this file.
# DEBUG stays off: `make run` serves Tablero as a user runs it; `make dev` turns DEBUG on.
SECRET_KEY={secret_key}
ALLOWED_HOSTS=127.0.0.1,localhost
TABLERO_ENCRYPTION_KEYS={fernet_key}
"""


def main(path: str = ".env") -> int:
    target = Path(path)
    if target.exists():
        return 0
    content = TEMPLATE.format(
        secret_key=secrets.token_urlsafe(50),
        fernet_key=Fernet.generate_key().decode(),
    )
    # Created readable by the owner only from the start; O_EXCL never overwrites.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    print(f"Wrote {target} with fresh secrets for local development.")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
