"""Signed, expiring acknowledgement tokens (the one-tap link in every message)."""

from __future__ import annotations

import base64
import os
import stat
from datetime import UTC, datetime, timedelta

import pytest

from riskwatch.ack_tokens import (
    AckTokenExpired,
    AckTokenInvalid,
    ack_key_path,
    ack_url,
    make_ack_token,
    verify_ack_token,
)
from riskwatch.config import load_settings
from riskwatch.dispatch import render_for
from riskwatch.errors import RiskwatchError

EXPIRES = datetime(2026, 5, 8, 8, 0, tzinfo=UTC)


def test_round_trip_names_alerts_expert_and_expiry() -> None:
    settings = load_settings()
    token = make_ack_token(settings, [42, 7, 42, 1000], 5, EXPIRES)
    claim = verify_ack_token(settings, token, now=EXPIRES - timedelta(hours=1))
    assert claim.alert_ids == (7, 42, 1000) and claim.expert_id == 5
    assert claim.expires_at == EXPIRES
    assert make_ack_token(settings, [7, 42, 1000], 5, EXPIRES) == token  # deterministic
    assert len(token) <= 40, "the link must fit the short SMS form"
    assert ack_url(settings, token) == f"http://127.0.0.1:8050/ack/{token}"
    no_expert = verify_ack_token(
        settings, make_ack_token(settings, [3], None, EXPIRES), now=EXPIRES - timedelta(seconds=1)
    )
    assert no_expert.expert_id is None


def test_key_file_is_private_and_created_once() -> None:
    settings = load_settings()
    make_ack_token(settings, [1], 1, EXPIRES)
    path = ack_key_path(settings)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    content = path.read_bytes()
    make_ack_token(settings, [2], 1, EXPIRES)
    assert path.read_bytes() == content


def test_expired_token_is_refused_with_a_clear_message() -> None:
    settings = load_settings()
    token = make_ack_token(settings, [1], 1, EXPIRES)
    with pytest.raises(AckTokenExpired) as caught:
        verify_ack_token(settings, token, now=EXPIRES)
    assert "expired on 2026-05-08 08:00 UTC" in str(caught.value)
    assert isinstance(caught.value, RiskwatchError)


def test_tampered_tokens_are_refused() -> None:
    settings = load_settings()
    token = make_ack_token(settings, [11, 12], 4, EXPIRES)
    raw = bytearray(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    now = EXPIRES - timedelta(days=1)
    for position in range(len(raw)):  # every single-byte change is caught
        changed = bytearray(raw)
        changed[position] ^= 0x01
        forged = base64.urlsafe_b64encode(bytes(changed)).rstrip(b"=").decode()
        with pytest.raises(AckTokenInvalid):
            verify_ack_token(settings, forged, now=now)
    for garbage in ("", "abc", "!!!!", token[:-3], token + "AA"):
        with pytest.raises(AckTokenInvalid):
            verify_ack_token(settings, garbage, now=now)


def test_a_token_from_another_installation_is_refused(tmp_path) -> None:
    ours = load_settings()
    theirs = load_settings(overrides={"data_dir": str(tmp_path / "elsewhere")})
    token = make_ack_token(theirs, [1], 1, EXPIRES)
    with pytest.raises(AckTokenInvalid) as caught:
        verify_ack_token(ours, token, now=EXPIRES - timedelta(days=1))
    assert "not issued by this riskwatch" in str(caught.value)


def test_messages_carry_a_link_that_expires_ttl_after_creation() -> None:
    from riskwatch.db.models import Notification
    from tests.test_dispatch import payload_for

    settings = load_settings(overrides={"delivery": {"ack_link_ttl_hours": 48}})
    created = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
    row = Notification(
        id=1,
        expert_id=9,
        channel_id=1,
        idempotency_key="k",
        created_at=created,
        payload=payload_for(9, [31, 32]),
    )
    rendered, link = render_for(settings, row)
    assert link is not None and link in rendered.text
    claim = verify_ack_token(settings, link.rsplit("/", 1)[1], now=created)
    assert claim.alert_ids == (31, 32) and claim.expert_id == 9
    assert claim.expires_at == created + timedelta(hours=48)
    assert render_for(settings, row) == (rendered, link)  # identical on a retry
