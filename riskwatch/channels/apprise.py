"""Apprise URLs: SMS gateways, Telegram, Signal, Teams, Slack, Matrix... through one library.

Apprise URLs carry tokens, so they are stored encrypted and never printed. Services whose body
is limited to an SMS (Apprise's ``body_maxlen`` of 160 or less) get the short form of the
message; the others get the subject and the plain text. Apprise reports success as a boolean;
on failure its warning log is read for the HTTP status so that 4xx answers (other than 408 and
429) count as permanent and everything else as transient.

Outbound addresses: when an Apprise URL names a server (an IP address, ``localhost`` or a
dotted host name, e.g. ``json://host/path`` or a self-hosted ntfy/Gotify/Matrix), that host is
checked against the private-address rule, as webhooks are. Service URLs whose "host" is a token
(``tgram://bottoken/chat``) connect to the service's public API and are not checked.
"""

from __future__ import annotations

import ipaddress
import logging
import re
from typing import Any

import apprise

from riskwatch.channels.base import (
    DeliveryReceipt,
    OutgoingMessage,
    PermanentError,
    TransientError,
    check_outbound_url,
)
from riskwatch.config import Settings

SMS_BODY_MAXLEN = 160
_STATUS = re.compile(r"error=(\d{3})")


def _looks_like_host(host: str) -> bool:
    if host == "localhost" or "." in host:
        return True
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def instantiate(url: str) -> Any:
    """The Apprise plugin for ``url``; PermanentError when Apprise does not recognise it."""
    plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    if plugin is None:
        scheme = url.split("://", 1)[0] if "://" in url else "?"
        raise PermanentError(f"Apprise does not recognise the URL (scheme {scheme}://)")
    return plugin


def check_apprise_url(url: str, *, allow_private_addresses: bool) -> Any:
    """Refuse unknown Apprise URLs and servers at private addresses; returns the plugin."""
    plugin = instantiate(url)
    host = str(getattr(plugin, "host", "") or "")
    if host and _looks_like_host(host):
        scheme = "https" if getattr(plugin, "secure", False) else "http"
        port = getattr(plugin, "port", None)
        netloc = f"[{host}]" if ":" in host else host
        if port:
            netloc += f":{port}"
        check_outbound_url(
            f"{scheme}://{netloc}/",
            what="Apprise target",
            allow_private_addresses=allow_private_addresses,
        )
    return plugin


def _redacted(text: str, secret: str) -> str:
    """Log text with the URL and its longer pieces removed (tokens must not reach the DB)."""
    cleaned = text.replace(secret, "***")
    for piece in re.split(r"[/:@?&=#]+", secret):
        if len(piece) >= 6:
            cleaned = cleaned.replace(piece, "***")
    return cleaned


class AppriseTransport:
    """Notifies one Apprise URL per message."""

    kind = "apprise"

    def __init__(self, settings: Settings) -> None:
        self._timeout = settings.delivery.http_timeout_seconds
        self._allow_private = settings.allow_private_addresses

    def send(self, message: OutgoingMessage) -> DeliveryReceipt:
        """Notify through Apprise; confirmed when Apprise reports success."""
        plugin = check_apprise_url(message.target, allow_private_addresses=self._allow_private)
        for attribute in ("socket_connect_timeout", "socket_read_timeout"):
            if hasattr(plugin, attribute):
                setattr(plugin, attribute, self._timeout)
        short = int(getattr(plugin, "body_maxlen", 0) or 0) <= SMS_BODY_MAXLEN
        notifier = apprise.Apprise()
        notifier.add(plugin)
        with apprise.LogCapture(level=logging.WARNING) as log:
            if short:
                ok = notifier.notify(body=message.rendered.short, title="")
            else:
                ok = notifier.notify(body=message.rendered.text, title=message.rendered.subject)
        if ok:
            return DeliveryReceipt(detail=f"accepted by Apprise ({plugin.service_name})")
        lines = [line for line in log.getvalue().splitlines() if " - WARNING - " in line]
        reason = _redacted(
            lines[-1].split(" - WARNING - ", 1)[1] if lines else "Apprise reported a failure",
            message.target,
        )
        match = _STATUS.search(reason)
        status = int(match.group(1)) if match else None
        if status is not None and 400 <= status < 500 and status not in (408, 425, 429):
            raise PermanentError(
                f"{plugin.service_name}: {reason}", disable_channel=status in (401, 403, 404, 410)
            )
        raise TransientError(f"{plugin.service_name}: {reason}")

    def close(self) -> None:
        """Nothing kept open between messages."""
