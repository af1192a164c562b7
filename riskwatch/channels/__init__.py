"""Delivery channels: one module per transport behind the common interface in ``base``.

``email`` (SMTP), ``webhook`` (Standard Webhooks), ``apprise`` (SMS gateways, chat apps...) and
``capture`` (the demo: messages written to a folder). :func:`make_transport` builds the one a
channel row needs.
"""

from __future__ import annotations

from riskwatch.channels.base import (
    DeliveryError,
    DeliveryReceipt,
    OutgoingMessage,
    PermanentError,
    TransientError,
    Transport,
)
from riskwatch.config import Settings

CHANNEL_KINDS = ("email", "webhook", "apprise", "capture")


def make_transport(kind: str, settings: Settings) -> Transport:
    """A transport for channels of ``kind``; PermanentError for an unknown kind."""
    if kind == "webhook":
        from riskwatch.channels.webhook import WebhookTransport

        return WebhookTransport(settings)
    if kind == "email":
        from riskwatch.channels.email import EmailTransport

        return EmailTransport(settings)
    if kind == "apprise":
        from riskwatch.channels.apprise import AppriseTransport

        return AppriseTransport(settings)
    if kind == "capture":
        from riskwatch.channels.capture import CaptureTransport

        return CaptureTransport(settings)
    raise PermanentError(f"unknown channel kind {kind!r} (known: {', '.join(CHANNEL_KINDS)})")


__all__ = [
    "CHANNEL_KINDS",
    "DeliveryError",
    "DeliveryReceipt",
    "OutgoingMessage",
    "PermanentError",
    "TransientError",
    "Transport",
    "make_transport",
]
