"""Standard Webhooks transport: signatures, status classification, keep-alive, private targets."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

import pytest

from riskwatch.channels.base import OutgoingMessage, PermanentError, TransientError
from riskwatch.channels.testing import WebhookReceiver
from riskwatch.channels.webhook import (
    WebhookTransport,
    secret_key_bytes,
    sign,
    verify,
    webhook_body,
)
from riskwatch.config import load_settings
from riskwatch.messages import render_notification
from riskwatch.secretbox import generate_webhook_secret
from tests.test_dispatch import SECRET, payload_for

CREATED = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)


def message(url: str, *, key: str = "alert-abc", secret: str | None = SECRET) -> OutgoingMessage:
    payload = payload_for(7, [11])
    rendered = render_notification(
        payload, created_at=CREATED, ack_link="http://x/ack/t", base_url="http://x"
    )
    return OutgoingMessage(
        notification_id=1,
        idempotency_key=key,
        kind="alert",
        channel_kind="webhook",
        target=url,
        secret=secret,
        rendered=rendered,
        payload=payload,
        created_at=CREATED,
        ack_link="http://x/ack/t",
    )


def transport(allow: bool = True, timeout: float = 2.0) -> WebhookTransport:
    return WebhookTransport(
        load_settings(
            overrides={
                "allow_private_addresses": allow,
                "delivery": {"http_timeout_seconds": timeout},
            }
        )
    )


def test_signature_matches_the_standard_webhooks_reference_vector() -> None:
    # The example from the Standard Webhooks specification.
    body = b'{"test": 2432232314}'
    expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert sign(SECRET, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body) == expected
    headers = {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": f"v1,bogus {expected}",
    }
    assert verify(SECRET, headers, body, now=1614265330 + 10)
    assert not verify(SECRET, headers, body + b" ", now=1614265330)  # body altered
    assert not verify(SECRET, headers, body, now=1614265330 + 3600)  # replayed late
    assert not verify(generate_webhook_secret(), headers, body, now=1614265330)


def test_generated_secrets_have_the_standard_form() -> None:
    secret = generate_webhook_secret()
    assert secret.startswith("whsec_") and len(secret_key_bytes(secret)) == 32
    assert generate_webhook_secret() != secret
    for bad in ("nope", "whsec_%%%", "whsec_" + base64.b64encode(b"short").decode()):
        with pytest.raises(ValueError):
            secret_key_bytes(bad)


def test_body_is_identical_for_identical_messages() -> None:
    first = webhook_body(message("http://127.0.0.1/hook"))
    assert first == webhook_body(message("http://127.0.0.1/hook"))
    assert b'"type":"riskwatch.alert"' in first and b'"timestamp":"2026-05-01T08:00:00Z"' in first


def test_keep_alive_sends_many_on_one_connection_and_survives_a_server_close() -> None:
    with WebhookReceiver(SECRET) as receiver:
        sender = transport()
        for index in range(20):
            receipt = sender.send(message(receiver.url, key=f"k{index}"))
            assert "200" in receipt.detail
        assert len(sender._connections) == 1
        # Servers close idle keep-alive connections without notice: the next request fails
        # on the stale socket and is sent again on a fresh connection.
        receiver.drop_connections = True
        sender.send(message(receiver.url, key="dropped-after"))
        sender.send(message(receiver.url, key="after-close"))
        sender.close()
    assert [r.webhook_id for r in receiver.received][-1] == "after-close"
    assert all(r.valid_signature for r in receiver.received)


@pytest.mark.parametrize(
    ("status", "error", "disables"),
    [
        (500, TransientError, None),
        (503, TransientError, None),
        (429, TransientError, None),
        (408, TransientError, None),
        (410, PermanentError, True),
        (404, PermanentError, True),
        (401, PermanentError, True),
        (400, PermanentError, False),
        (422, PermanentError, False),
    ],
)
def test_status_codes_are_classified(status: int, error: type, disables: bool | None) -> None:
    with WebhookReceiver(SECRET) as receiver:
        receiver.always(status)
        with pytest.raises(error) as caught:
            transport().send(message(receiver.url))
    assert str(status) in str(caught.value)
    if disables is not None:
        assert caught.value.disable_channel is disables


def test_loopback_is_refused_unless_private_addresses_are_allowed() -> None:
    with WebhookReceiver(SECRET) as receiver:
        with pytest.raises(PermanentError) as caught:
            transport(allow=False).send(message(receiver.url))
        assert receiver.received == []
    assert "allow_private_addresses" in str(caught.value)
    assert "refused to send to" in str(caught.value)


def test_missing_or_malformed_secret_is_permanent() -> None:
    with pytest.raises(PermanentError):
        transport().send(message("http://127.0.0.1:9/hook", secret=None))
    with pytest.raises(PermanentError):
        transport().send(message("http://127.0.0.1:9/hook", secret="not-a-secret"))


def test_slow_endpoint_times_out_as_transient() -> None:
    import time

    with WebhookReceiver(SECRET) as receiver:
        receiver.responder = lambda _id: time.sleep(1.0) or 200  # type: ignore[func-returns-value]
        with pytest.raises(TransientError) as caught:
            transport(timeout=0.3).send(message(receiver.url))
    assert "no answer" in str(caught.value)
