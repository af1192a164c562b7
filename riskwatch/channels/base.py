"""The Transport interface every channel implements, and the errors that drive retries.

A transport sends one :class:`OutgoingMessage` and returns a :class:`DeliveryReceipt` only once
the other side confirmed it (an HTTP 2xx, an SMTP server accepting the message, a file written
and synced). Failures raise :class:`TransientError` (retry later with backoff: 5xx, 429,
timeouts, refused connections) or :class:`PermanentError` (stop retrying and mark the channel:
4xx other than 408/429, 410 Gone, SMTP 5xx on the recipient). Like healthchecks' transports,
the error says whether it is permanent; the dispatcher decides what that means for the row.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import urlsplit

from riskwatch.fetch import FetchError, resolve_allowed
from riskwatch.messages import RenderedMessage
from riskwatch.timeutil import utcnow


class DeliveryError(Exception):
    """A send failed; ``retry_after`` (seconds) is the other side's wish when it gave one."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TransientError(DeliveryError):
    """Worth retrying later: the other side is down, busy or slow."""


class PermanentError(DeliveryError):
    """Retrying will not help. ``disable_channel``: the target itself is gone or refused."""

    def __init__(
        self, message: str, *, disable_channel: bool = True, retry_after: float | None = None
    ) -> None:
        super().__init__(message, retry_after=retry_after)
        self.disable_channel = disable_channel


@dataclass(frozen=True)
class OutgoingMessage:
    """One rendered notification, ready for one channel (target and secret decrypted)."""

    notification_id: int
    idempotency_key: str
    kind: str  # alert / escalation / digest / resolved
    channel_kind: str
    target: str
    secret: str | None
    rendered: RenderedMessage
    payload: dict[str, Any]
    created_at: datetime
    ack_link: str | None = None
    map_png: bytes | None = None


@dataclass(frozen=True)
class DeliveryReceipt:
    """The other side's confirmation: when, and what it said (status line, queue id...)."""

    confirmed_at: datetime = field(default_factory=utcnow)
    detail: str = ""


class Transport(Protocol):
    """One kind of channel. Implementations keep connections open between sends."""

    kind: str

    def send(self, message: OutgoingMessage) -> DeliveryReceipt:
        """Deliver ``message``; return only after the other side confirmed it."""
        ...

    def close(self) -> None:
        """Release connections (called when a dispatch run ends)."""
        ...


def check_outbound_url(url: str, *, allow_private_addresses: bool, what: str) -> None:
    """Refuse a URL whose host resolves to a loopback or private address (unless allowed).

    Uses the same rule as URL sources (:func:`riskwatch.fetch.resolve_allowed`). A host name
    that does not resolve now is accepted: the check runs again at every connection.
    Raises PermanentError naming ``what`` and the setting.
    """
    parts = urlsplit(url)
    host = parts.hostname
    if not host:
        raise PermanentError(f"{what}: the URL has no host")
    try:
        port = parts.port or (443 if parts.scheme.endswith("s") else 80)
    except ValueError:
        raise PermanentError(f"{what}: the URL has an invalid port") from None
    try:
        socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError):
        return
    try:
        resolve_allowed(host, port, allow_private_addresses=allow_private_addresses)
    except FetchError as exc:
        raise PermanentError(
            f"{what}: {exc}".replace("refused to download from", "refused to send to")
        ) from None
