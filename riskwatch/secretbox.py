"""Encrypt channel targets and secrets at rest; show them redacted.

Channel targets (e-mail addresses, webhook URLs, Apprise URLs, which carry tokens) and webhook
signing secrets are stored encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from
``cryptography``). The key is ``delivery.encryption_key_file`` when configured, else
``secret.key`` in the data directory, generated on first use with mode 0600. Losing the key
makes the stored channels unreadable (they must be added again), so operators back it up.
"""

from __future__ import annotations

import base64
import contextlib
import os
import secrets
import threading
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from cryptography.fernet import Fernet, InvalidToken

from riskwatch.config import Settings
from riskwatch.errors import RiskwatchError

ENCRYPTION_KEY_FILE = "secret.key"

_cache_lock = threading.Lock()
_fernets: dict[tuple[str, bytes], Fernet] = {}


class SecretboxError(RiskwatchError):
    """A stored secret cannot be read (wrong or missing key) or a key file is unusable."""


def read_or_create_key_file(path: Path, generate: Callable[[], bytes]) -> bytes:
    """The bytes of a key file; created with ``generate()`` and mode 0600 when absent.

    The key is written to a private temporary file first and then hard-linked into place, which
    fails if the file exists: two processes (or threads) starting at once agree on one key, and
    nobody ever reads a created-but-not-yet-written file.
    """
    path = path.expanduser()
    try:
        data = path.read_bytes().strip()
        if data:
            return data
        raise SecretboxError(f"key file {path} is empty; remove it to generate a new key")
    except FileNotFoundError:
        pass
    except PermissionError:
        raise SecretboxError(f"key file {path} is not readable") from None
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(generate())
            handle.flush()
            os.fsync(handle.fileno())
        with contextlib.suppress(FileExistsError):  # another process won the race: use its key
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return path.read_bytes().strip()


_key_cache: dict[str, bytes] = {}


def cached_key_file(path: Path, generate: Callable[[], bytes]) -> bytes:
    """:func:`read_or_create_key_file`, read once per process and path (hot paths sign a lot)."""
    name = str(path.expanduser().absolute())
    with _cache_lock:  # held while creating, so threads of one process create the file once
        key = _key_cache.get(name)
        if key is None:
            key = _key_cache[name] = read_or_create_key_file(path, generate)
    return key


def encryption_key_path(settings: Settings) -> Path:
    """Where the encryption key is (configured file, else ``secret.key`` in the data dir)."""
    configured = settings.delivery.encryption_key_file
    if configured is not None:
        return configured.expanduser()
    return settings.resolved_data_dir / ENCRYPTION_KEY_FILE


def _fernet(settings: Settings) -> Fernet:
    path = encryption_key_path(settings)
    key = cached_key_file(path, Fernet.generate_key)
    cache_key = (str(path), key)
    with _cache_lock:
        fernet = _fernets.get(cache_key)
        if fernet is None:
            try:
                fernet = Fernet(key)
            except ValueError:
                raise SecretboxError(
                    f"key file {path} does not hold a Fernet key (32 url-safe base64 bytes)"
                ) from None
            _fernets[cache_key] = fernet
    return fernet


def encrypt(settings: Settings, plaintext: str) -> str:
    """The encrypted form of ``plaintext`` (a Fernet token, ASCII)."""
    return _fernet(settings).encrypt(plaintext.encode("utf-8")).decode("ascii")


def decrypt(settings: Settings, token: str) -> str:
    """The plaintext of a token made by :func:`encrypt`; SecretboxError with the key named."""
    try:
        return _fernet(settings).decrypt(token.encode("ascii")).decode("utf-8")
    except (InvalidToken, ValueError):
        raise SecretboxError(
            "a stored channel secret cannot be decrypted with the key "
            f"{encryption_key_path(settings)}; was the key replaced? Add the channel again or "
            "restore the original key file"
        ) from None


def generate_webhook_secret() -> str:
    """A Standard Webhooks signing secret: ``whsec_`` + base64 of 32 random bytes."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode("ascii")


def redact(kind: str, target: str) -> str:
    """A display form of a channel target that reveals no token, password or full address."""
    if kind == "email":
        local, _, domain = target.partition("@")
        return f"{local[:1]}***@{domain}" if domain else "***"
    if kind == "capture":
        return f"capture:{target}"
    parts = urlsplit(target)
    scheme = parts.scheme or "?"
    if kind == "webhook":
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
        path = "/…" if parts.path not in ("", "/") else ""
        return f"{scheme}://{host}{port}{path}"
    # Apprise URLs carry tokens anywhere (host, path, user): only the service is shown.
    return f"{scheme}://***"
