"""Webhooks signed the Standard Webhooks way (https://www.standardwebhooks.com).

Every POST carries:

* ``webhook-id``: the notification's idempotency key, the same on every retry, so a receiver
  can drop duplicates (delivery is at least once);
* ``webhook-timestamp``: the attempt's Unix time in seconds;
* ``webhook-signature``: ``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` under the secret
  (``whsec_`` + base64 of the key bytes).

The JSON body is built from the notification's payload and creation time only, so it is
byte-identical across retries. Connections are kept alive per host and connect only to
addresses the private-address rule allows (the same check as URL sources, run at every
connection). Redirects are not followed.
"""

from __future__ import annotations

import base64
import email.utils
import hashlib
import hmac
import http.client
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import partial
from typing import Any
from urllib.parse import urlsplit

from riskwatch import __version__
from riskwatch.channels.base import (
    DeliveryReceipt,
    OutgoingMessage,
    PermanentError,
    TransientError,
)
from riskwatch.config import Settings
from riskwatch.fetch import FetchError, guarded_create_connection
from riskwatch.timeutil import iso_utc

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
USER_AGENT = f"riskwatch/{__version__} (Standard Webhooks)"
# Statuses worth retrying besides 5xx: request timeout, too early, too many requests.
_TRANSIENT_4XX = frozenset({408, 425, 429})
# The endpoint itself is gone or refuses us: stop using the channel until someone fixes it.
_DISABLING_4XX = frozenset({401, 403, 404, 410})


def secret_key_bytes(secret: str) -> bytes:
    """The HMAC key of a ``whsec_`` secret; ValueError when it is not one."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError("a Standard Webhooks secret starts with 'whsec_'")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except (ValueError, TypeError):
        raise ValueError("a Standard Webhooks secret is 'whsec_' followed by base64") from None
    if len(key) < 16:
        raise ValueError("a webhook secret needs at least 16 key bytes")
    return key


def sign(secret: str, message_id: str, timestamp: int | str, body: bytes) -> str:
    """The ``webhook-signature`` value for one request: ``v1,<base64 HMAC-SHA256>``."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(secret_key_bytes(secret), signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode('ascii')}"


def verify(
    secret: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance_seconds: float = 300.0,
    now: float | None = None,
) -> bool:
    """True when ``headers`` carry a valid, recent Standard Webhooks signature of ``body``.

    For receivers (and the tests): any of the space-separated ``v1,`` signatures may match;
    a timestamp further than ``tolerance_seconds`` from ``now`` is refused (replays).
    """
    lowered = {key.lower(): value for key, value in headers.items()}
    message_id = lowered.get("webhook-id")
    timestamp = lowered.get("webhook-timestamp")
    signatures = lowered.get("webhook-signature", "")
    if not message_id or not timestamp or not signatures:
        return False
    try:
        stamp = int(timestamp)
    except ValueError:
        return False
    current = time.time() if now is None else now
    if abs(current - stamp) > tolerance_seconds:
        return False
    expected = sign(secret, message_id, stamp, body).split(",", 1)[1]
    for candidate in signatures.split():
        version, _, value = candidate.partition(",")
        if version == SIGNATURE_VERSION and hmac.compare_digest(value, expected):
            return True
    return False


def webhook_body(message: OutgoingMessage) -> bytes:
    """The JSON body of a notification: identical bytes on every retry."""
    document = {
        "type": f"riskwatch.{message.kind}",
        "timestamp": iso_utc(message.created_at),
        "data": {
            "notification_id": message.notification_id,
            "idempotency_key": message.idempotency_key,
            "language": message.rendered.language,
            "subject": message.rendered.subject,
            "text": message.rendered.text,
            "short": message.rendered.short,
            "ack_url": message.ack_link,
            "payload": message.payload,
        },
    }
    # Keys keep the payload's stored order (JSON columns keep it), so retries are identical.
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"), default=str).encode(
        "utf-8"
    )


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class _OneWriteMixin:
    """Send the request line, headers and a bytes body in one write.

    ``http.client`` writes the headers and the body separately: two packets, and the receiver
    wakes up twice per request. A signed webhook is a few kilobytes, so one write is cheaper for
    both sides (CPython did this itself for small bodies in the past).
    """

    _buffer: list[bytes]

    def _send_output(self, message_body: Any = None, encode_chunked: bool = False) -> None:
        if isinstance(message_body, bytes) and not encode_chunked:
            self._buffer.extend((b"", b""))
            request = b"\r\n".join(self._buffer) + message_body
            del self._buffer[:]
            self.send(request)  # type: ignore[attr-defined]
            return
        super()._send_output(message_body, encode_chunked)  # type: ignore[misc]


class _HTTPConnection(_OneWriteMixin, http.client.HTTPConnection):
    pass


class _HTTPSConnection(_OneWriteMixin, http.client.HTTPSConnection):
    pass


class WebhookTransport:
    """POSTs signed notifications, one kept-alive connection per (scheme, host, port)."""

    kind = "webhook"

    def __init__(self, settings: Settings) -> None:
        self._timeout = settings.delivery.http_timeout_seconds
        self._allow_private = settings.allow_private_addresses
        self._connections: dict[tuple[str, str, int], http.client.HTTPConnection] = {}

    # Connections ---------------------------------------------------------------------------
    def _connection(self, scheme: str, host: str, port: int) -> http.client.HTTPConnection:
        key = (scheme, host, port)
        connection = self._connections.get(key)
        if connection is None:
            factory = _HTTPSConnection if scheme == "https" else _HTTPConnection
            connection = factory(host, port, timeout=self._timeout)
            # Every connection (and reconnection) checks the addresses it connects to.
            setattr(  # noqa: B010 - a private hook of http.client, set like riskwatch.fetch
                connection,
                "_create_connection",
                partial(guarded_create_connection, allow_private_addresses=self._allow_private,
                        no_delay=True),
            )
            self._connections[key] = connection
        return connection

    def _drop(self, scheme: str, host: str, port: int) -> None:
        connection = self._connections.pop((scheme, host, port), None)
        if connection is not None:
            connection.close()

    def close(self) -> None:
        """Close every kept-alive connection."""
        for connection in self._connections.values():
            connection.close()
        self._connections.clear()

    def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> tuple[int, str, Any]:
        """POST ``body``; (status, reason, response headers). Network failures are transient.

        A kept-alive connection the server closed meanwhile fails on first use; the request is
        then sent once more on a fresh connection (at worst a duplicate with the same id).
        """
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        if scheme not in ("http", "https") or not parts.hostname:
            raise PermanentError(f"webhook URL must be http or https with a host: {scheme}://…")
        port = parts.port or (443 if scheme == "https" else 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        for attempt in (1, 2):
            reused = (scheme, parts.hostname, port) in self._connections
            connection = self._connection(scheme, parts.hostname, port)
            try:
                connection.request("POST", path, body=body, headers=dict(headers))
                response = connection.getresponse()
                response.read()  # drain, so the connection can carry the next request
                if response.will_close:
                    self._drop(scheme, parts.hostname, port)
                return response.status, response.reason, response.headers
            except FetchError as exc:
                self._drop(scheme, parts.hostname, port)
                raise PermanentError(
                    str(exc).replace("refused to download from", "refused to send to")
                ) from None
            except (
                http.client.RemoteDisconnected,
                ConnectionResetError,
                BrokenPipeError,
                http.client.BadStatusLine,
            ) as exc:
                self._drop(scheme, parts.hostname, port)
                if reused and attempt == 1:
                    continue
                raise TransientError(
                    f"connection to {parts.hostname}:{port} lost: {exc!r}"
                ) from None
            except TimeoutError:
                self._drop(scheme, parts.hostname, port)
                raise TransientError(
                    f"no answer from {parts.hostname}:{port} within {self._timeout:g} s"
                ) from None
            except (OSError, http.client.HTTPException) as exc:
                self._drop(scheme, parts.hostname, port)
                if reused and attempt == 1:
                    continue  # a stale kept-alive socket: one more try on a fresh connection
                reason = getattr(exc, "strerror", None) or repr(exc)
                raise TransientError(f"cannot reach {parts.hostname}:{port}: {reason}") from None
        raise TransientError(f"connection to {parts.hostname}:{port} kept failing")

    # Sending -------------------------------------------------------------------------------
    def send(self, message: OutgoingMessage) -> DeliveryReceipt:
        """Sign and POST one notification; return once the endpoint answered 2xx."""
        if not message.secret:
            raise PermanentError("webhook channel has no signing secret", disable_channel=True)
        body = webhook_body(message)
        timestamp = int(time.time())
        try:
            signature = sign(message.secret, message.idempotency_key, timestamp, body)
        except ValueError as exc:
            raise PermanentError(f"webhook secret unusable: {exc}") from None
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "webhook-id": message.idempotency_key,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": signature,
        }
        status, reason, response_headers = self.post(message.target, body, headers)
        described = f"HTTP {status} {reason}".strip()
        if 200 <= status < 300:
            return DeliveryReceipt(detail=described)
        retry_after = _retry_after(response_headers.get("Retry-After"))
        if status >= 500 or status in _TRANSIENT_4XX:
            raise TransientError(f"endpoint answered {described}", retry_after=retry_after)
        if status == 410:
            raise PermanentError(f"endpoint answered {described}: it was removed")
        if status in _DISABLING_4XX:
            raise PermanentError(f"endpoint answered {described}")
        if 300 <= status < 400:
            raise PermanentError(
                f"endpoint answered {described}; redirects are not followed, set the final URL",
                disable_channel=True,
            )
        raise PermanentError(f"endpoint answered {described}", disable_channel=False)
