"""Channel secrets at rest: encrypted with a 0600 key from the data dir, shown redacted."""

from __future__ import annotations

import os
import stat

import pytest

from riskwatch.config import load_settings
from riskwatch.secretbox import (
    SecretboxError,
    decrypt,
    encrypt,
    encryption_key_path,
    redact,
)


def test_round_trip_with_a_generated_private_key() -> None:
    settings = load_settings()
    token = encrypt(settings, "json://user:token@chat.example.org/room")
    assert "token" not in token and decrypt(settings, token).endswith("/room")
    path = encryption_key_path(settings)
    assert path.parent == settings.resolved_data_dir
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_a_configured_key_file_is_used_and_a_wrong_key_is_named(tmp_path) -> None:
    from cryptography.fernet import Fernet

    key_file = tmp_path / "riskwatch.key"
    key_file.write_bytes(Fernet.generate_key())
    settings = load_settings(overrides={"delivery": {"encryption_key_file": str(key_file)}})
    token = encrypt(settings, "secret")
    assert encryption_key_path(settings) == key_file
    with pytest.raises(SecretboxError) as caught:
        decrypt(load_settings(), token)
    assert "cannot be decrypted" in str(caught.value)


@pytest.mark.parametrize(
    ("kind", "target", "shown", "hidden"),
    [
        ("email", "maria.lopez@agency.example", "m***@agency.example", "maria.lopez"),
        (
            "webhook",
            "https://hooks.example.org/T0/B1/abcdef?token=zz",
            "https://hooks.example.org/…",
            "abcdef",
        ),
        ("apprise", "tgram://123456:ABC-token/98765", "tgram://***", "ABC-token"),
        ("capture", "expert-fr", "capture:expert-fr", "?"),
    ],
)
def test_redaction_hides_tokens_and_addresses(kind, target, shown, hidden) -> None:
    assert redact(kind, target) == shown
    assert hidden not in redact(kind, target)
