"""Signed, expiring acknowledgement tokens for the one-tap link in every alert message.

A token names the alerts a message carried, the expert it went to and when it expires, and is
signed with HMAC-SHA256 under a key kept in the data directory (``ack-signing.key``, mode 0600,
generated on first use). Links are ``{base_url}/ack/<token>``; the web route verifies the token
with :func:`verify_ack_token` and records the acknowledgement.

The token is binary-packed and base64url-encoded so that the link fits in the short (SMS) form
of a message: a few alerts give a token of about 30 characters. The signature is truncated to
96 bits, ample for a link that also expires.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from riskwatch.config import Settings
from riskwatch.errors import RiskwatchError
from riskwatch.secretbox import cached_key_file
from riskwatch.timeutil import to_utc, utcnow

ACK_KEY_FILE = "ack-signing.key"
_VERSION = 1
_SIGNATURE_BYTES = 12
_MAX_ALERTS = 200


class AckTokenError(RiskwatchError):
    """An acknowledgement token was refused (the message says why, for the person who tapped)."""


class AckTokenInvalid(AckTokenError):
    """The token was altered, truncated, or signed with another key."""


class AckTokenExpired(AckTokenError):
    """The token is authentic but its link has expired."""


@dataclass(frozen=True)
class AckClaim:
    """What a verified token says: which alerts, for which expert, valid until when."""

    alert_ids: tuple[int, ...]
    expert_id: int | None
    expires_at: datetime


def ack_key_path(settings: Settings) -> Path:
    """The signing key's file in the data directory."""
    return settings.resolved_data_dir / ACK_KEY_FILE


def _key(settings: Settings) -> bytes:
    return cached_key_file(ack_key_path(settings), lambda: secrets.token_hex(32).encode("ascii"))


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _read_varint(data: bytes, position: int) -> tuple[int, int]:
    value = 0
    shift = 0
    while True:
        if position >= len(data) or shift > 63:
            raise AckTokenInvalid("this acknowledgement link is incomplete or damaged")
        byte = data[position]
        position += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, position
        shift += 7


def _sign(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, b"riskwatch-ack\x00" + body, hashlib.sha256).digest()[:_SIGNATURE_BYTES]


def make_ack_token(
    settings: Settings,
    alert_ids: Iterable[int],
    expert_id: int | None,
    expires_at: datetime,
) -> str:
    """A signed token for acknowledging ``alert_ids`` as ``expert_id`` until ``expires_at``.

    The same arguments give the same token, so a message re-sent after a retry carries the
    same link.
    """
    ids = sorted({int(alert_id) for alert_id in alert_ids})
    if not ids:
        raise ValueError("an acknowledgement token needs at least one alert id")
    if len(ids) > _MAX_ALERTS:
        raise ValueError(f"an acknowledgement token carries at most {_MAX_ALERTS} alerts")
    if any(alert_id < 0 for alert_id in ids):
        raise ValueError("alert ids are positive")
    expires = int(to_utc(expires_at).timestamp())
    body = bytearray(struct.pack(">BI", _VERSION, expires))
    body += _varint(0 if expert_id is None else int(expert_id) + 1)
    body += _varint(len(ids))
    previous = 0
    for alert_id in ids:  # sorted, so deltas are small
        body += _varint(alert_id - previous)
        previous = alert_id
    raw = bytes(body) + _sign(_key(settings), bytes(body))
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def verify_ack_token(settings: Settings, token: str, *, now: datetime | None = None) -> AckClaim:
    """The claim of an authentic, unexpired token; AckTokenInvalid or AckTokenExpired else."""
    text = (token or "").strip()
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise AckTokenInvalid(
            "this acknowledgement link is damaged (not a riskwatch token)"
        ) from None
    if len(raw) < 5 + 2 + _SIGNATURE_BYTES:
        raise AckTokenInvalid("this acknowledgement link is incomplete or damaged")
    body, signature = raw[:-_SIGNATURE_BYTES], raw[-_SIGNATURE_BYTES:]
    if not hmac.compare_digest(signature, _sign(_key(settings), body)):
        raise AckTokenInvalid(
            "this acknowledgement link was altered or was not issued by this riskwatch"
        )
    version, expires = struct.unpack(">BI", body[:5])
    if version != _VERSION:
        raise AckTokenInvalid(f"unsupported acknowledgement link version {version}")
    expert_plus_one, position = _read_varint(body, 5)
    count, position = _read_varint(body, position)
    ids: list[int] = []
    previous = 0
    for _ in range(count):
        delta, position = _read_varint(body, position)
        previous += delta
        ids.append(previous)
    if position != len(body) or not ids:
        raise AckTokenInvalid("this acknowledgement link is damaged")
    expires_at = datetime.fromtimestamp(expires, UTC)
    current = to_utc(now) if now is not None else utcnow()
    if current >= expires_at:
        raise AckTokenExpired(
            f"this acknowledgement link expired on {expires_at:%Y-%m-%d %H:%M} UTC; "
            "acknowledge the alert from the dashboard or with `riskwatch alerts ack`"
        )
    return AckClaim(
        alert_ids=tuple(ids),
        expert_id=None if expert_plus_one == 0 else expert_plus_one - 1,
        expires_at=expires_at,
    )


def ack_url(settings: Settings, token: str) -> str:
    """The link that acknowledges with ``token``: ``{base_url}/ack/<token>``."""
    return f"{str(settings.base_url).rstrip('/')}/ack/{token}"
