"""Write a local `.env` with freshly generated secrets, once.

`make run` calls this so a newcomer configures nothing. An existing `.env` is never rewritten:
a secret that a newer Tablero needs and the file lacks is appended to it, the rest untouched.
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
TABLERO_GATEWAY_PEPPER={gateway_pepper}
"""


def _fresh_values() -> dict[str, str]:
    return {
        "secret_key": secrets.token_urlsafe(50),
        "fernet_key": Fernet.generate_key().decode(),
        "gateway_pepper": secrets.token_urlsafe(48),
    }


def _add_missing(target: Path) -> None:
    """Append the template's settings that an existing file lacks (written by an older
    Tablero), with fresh values; nothing already there changes."""
    present = {
        line.split("=", 1)[0].strip()
        for line in target.read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    lines = TEMPLATE.format(**_fresh_values()).splitlines()
    missing = [line for line in lines if "=" in line and line.split("=", 1)[0] not in present]
    if not missing:
        return
    with target.open("a") as handle:
        handle.write("".join(f"{line}\n" for line in missing))
    names = ", ".join(line.split("=", 1)[0] for line in missing)
    print(f"Added {names} to {target}.")


def main(path: str = ".env") -> int:
    target = Path(path)
    if target.exists():
        _add_missing(target)
        return 0
    content = TEMPLATE.format(**_fresh_values())
    # Created readable by the owner only from the start; O_EXCL never overwrites.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(content)
    print(f"Wrote {target} with fresh secrets for local development.")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
