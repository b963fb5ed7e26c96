"""Pre-shared keys: made by ``jacknet keygen``, read from a file only its
owner can read, or from a systemd credential.  A key never passes through
the command line, the environment or a log."""
from __future__ import annotations

import base64
import binascii
import os
import stat
from pathlib import Path

from jacknet.errors import ConfigError

KEY_BYTES = 32
MOST_KEYS = 4  # lines of a key file read: the key, and those rotated in or out
# What a unit hands us with LoadCredential=jacknet.key:/etc/jacknet/link.key
CREDENTIAL = "jacknet.key"


def keygen(path: str | Path) -> Path:
    """Write a new random key to ``path`` (base64, one line), readable by its
    owner only; refuses to overwrite a file (`ConfigError`)."""
    path = Path(path)
    text = base64.b64encode(os.urandom(KEY_BYTES)) + b"\n"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigError(f"{path} exists: a key is not overwritten (remove it first, and "
                          "give every end the new one)") from None
    except OSError as e:
        raise ConfigError(f"cannot write {path}: {e.strerror}") from None
    with os.fdopen(fd, "wb") as fh:
        fh.write(text)
    return path


def key_path(key_file: str | None) -> Path:
    """Where the key is: ``key_file``, else the systemd credential.

    Raises
    ------
    ConfigError
        Neither is there.
    """
    if key_file:
        return Path(key_file)
    creds = os.environ.get("CREDENTIALS_DIRECTORY")
    if creds and (Path(creds) / CREDENTIAL).exists():
        return Path(creds) / CREDENTIAL
    raise ConfigError("security psk needs a key: key-file = PATH (made by 'jacknet keygen "
                      f"PATH'), or a systemd credential named {CREDENTIAL} "
                      f"(LoadCredential={CREDENTIAL}:PATH)")


def load_key(key_file: str | None) -> bytes:
    """The key a sender seals with: the first of `load_keys`."""
    return load_keys(key_file)[0]


def load_keys(key_file: str | None) -> list[bytes]:
    """The 32-byte keys of ``key_file`` (or the systemd credential), one per
    line: a sender seals with the first, a receiver takes any of them (a
    key being rotated in or out; docs/security.md).

    Raises
    ------
    ConfigError
        No key, a file others may read or write, or a line that is not a key.
    """
    path = key_path(key_file)
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as e:
        raise ConfigError(f"cannot read the key {path}: {e.strerror}") from None
    with os.fdopen(fd, "rb") as fh:
        info = os.fstat(fh.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise ConfigError(f"the key {path} is not a regular file")
        if info.st_mode & 0o077:
            raise ConfigError(f"the key {path} may be read by others (mode "
                              f"{stat.S_IMODE(info.st_mode):04o}): chmod 600 {path}")
        text = fh.read(MOST_KEYS * 4 * KEY_BYTES)
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            key = base64.b64decode(line.strip(), validate=True)
        except (binascii.Error, ValueError):
            key = b""
        if len(key) != KEY_BYTES:
            raise ConfigError(f"{path}: line {number} is not a jacknet key ({KEY_BYTES} bytes "
                              "in base64, as 'jacknet keygen' writes)")
        keys.append(key)
    if not keys:
        raise ConfigError(f"{path} holds no key (make one with 'jacknet keygen PATH')")
    return keys[:MOST_KEYS]
