"""Real receivers on loopback for tests and trials: a Standard Webhooks endpoint and an SMTP sink.

``WebhookReceiver`` is an HTTP/1.1 server (keep-alive) that verifies every request's
signature, records it, and answers what it is scripted to answer (e.g. 503 three times, then
200; or 410 for good). ``SmtpSink`` is an aiosmtpd server (aiosmtpd is a test dependency) that
keeps every message and can refuse chosen recipients with a 5xx. Both bind 127.0.0.1 on a free
port and stop cleanly.
"""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

from riskwatch.channels.webhook import verify


@dataclass(frozen=True)
class ReceivedWebhook:
    """One request as the receiver saw it."""

    webhook_id: str
    timestamp: str
    signature: str
    body: bytes
    valid_signature: bool
    answered: int
    path: str

    def json(self) -> Any:
        return json.loads(self.body)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; with Nagle on, the second waits for the client's
    # delayed ACK (~40 ms a request on Linux).
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, *args: object) -> None:  # quiet: tests read the records instead
        pass

    def do_GET(self) -> None:  # noqa: N802 - the name http.server calls
        """``/_stats`` (what was received, as JSON) and ``/_clear``: for a receiver running in
        another process (benchmarks)."""
        receiver = self.server.receiver
        if self.path == "/_clear":
            receiver.clear()
            document: dict[str, Any] = {"cleared": True}
        elif self.path == "/_stats":
            with receiver._lock:
                items = list(receiver.received)
            document = {
                "received": len(items),
                "valid_signatures": sum(item.valid_signature for item in items),
                "accepted_ids": [i.webhook_id for i in items if 200 <= i.answered < 300],
            }
        else:
            self.send_error(404)
            return
        reply = json.dumps(document).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def do_POST(self) -> None:  # noqa: N802 - the name http.server calls
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        receiver = self.server.receiver
        headers = {key: value for key, value in self.headers.items()}
        if len(body) < length:  # the sender died mid-request: nothing was delivered
            receiver._record(
                ReceivedWebhook(
                    webhook_id=headers.get("webhook-id", ""),
                    timestamp="",
                    signature="",
                    body=body,
                    valid_signature=False,
                    answered=0,
                    path=self.path,
                )
            )
            self.close_connection = True
            return
        status = receiver._next_status(headers.get("webhook-id", ""))
        valid = receiver.secret is not None and verify(receiver.secret, headers, body)
        receiver._record(
            ReceivedWebhook(
                webhook_id=headers.get("webhook-id", ""),
                timestamp=headers.get("webhook-timestamp", ""),
                signature=headers.get("webhook-signature", ""),
                body=body,
                valid_signature=valid,
                answered=status,
                path=self.path,
            )
        )
        reply = b"ok" if status < 300 else b"scripted failure"
        try:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(reply)))
            if status in (429, 503) and receiver.retry_after is not None:
                self.send_header("Retry-After", str(receiver.retry_after))
            self.end_headers()
            self.wfile.write(reply)
        except (BrokenPipeError, ConnectionResetError):
            # The sender gave up (timeout) or was killed: nothing to answer to.
            self.close_connection = True
            return
        if receiver.drop_connections:
            # Close without announcing it, as servers do with idle keep-alive connections.
            self.close_connection = True


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    receiver: WebhookReceiver

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A sender killed or timed out mid-request is part of the trials, not an error.
        import sys

        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class WebhookReceiver:
    """A Standard Webhooks endpoint on 127.0.0.1 that records and verifies what it receives.

    ``fail_next(n, status)`` makes the next ``n`` requests answer ``status``; ``always(status)``
    answers ``status`` to every request until reset with ``always(None)``; ``responder`` (a
    callable webhook-id -> status or None) decides per request when set.
    """

    def __init__(self, secret: str | None = None, *, retry_after: float | None = None) -> None:
        self.secret = secret
        self.retry_after = retry_after
        self.received: list[ReceivedWebhook] = []
        self.responder: Callable[[str], int | None] | None = None
        self.drop_connections = False
        self._lock = threading.Lock()
        self._script: deque[int] = deque()
        self._always: int | None = None
        self._server = _Server(("127.0.0.1", 0), _Handler)
        self._server.receiver = self
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_port}/hook"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def fail_next(self, count: int, status: int = 503) -> None:
        with self._lock:
            self._script.extend([status] * count)

    def always(self, status: int | None) -> None:
        with self._lock:
            self._always = status

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
            self._script.clear()
            self._always = None

    def _next_status(self, webhook_id: str) -> int:
        if self.responder is not None:
            decided = self.responder(webhook_id)
            if decided is not None:
                return decided
        with self._lock:
            if self._script:
                return self._script.popleft()
            return self._always or 200

    def _record(self, item: ReceivedWebhook) -> None:
        with self._lock:
            self.received.append(item)

    def ids(self, *, accepted_only: bool = True) -> list[str]:
        """webhook-ids received (answered 2xx when ``accepted_only``), in arrival order."""
        with self._lock:
            return [
                r.webhook_id for r in self.received if not accepted_only or 200 <= r.answered < 300
            ]


@dataclass(frozen=True)
class ReceivedMail:
    """One message the SMTP sink accepted."""

    mail_from: str
    recipients: tuple[str, ...]
    content: bytes

    def message(self) -> EmailMessage:
        parsed = message_from_bytes(self.content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        return parsed


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class SmtpSink:
    """An aiosmtpd SMTP server on 127.0.0.1 keeping every message; ``refuse`` holds addresses
    answered ``550`` at RCPT, ``busy`` makes the next RCPTs answer ``451``."""

    def __init__(self) -> None:
        from aiosmtpd.controller import Controller

        self.messages: list[ReceivedMail] = []
        self.refuse: set[str] = set()
        self.busy = 0
        self._lock = threading.Lock()
        sink = self

        class _SinkHandler:
            async def handle_RCPT(
                self,
                server: Any,
                session: Any,
                envelope: Any,  # noqa: N802
                address: str,
                rcpt_options: list[str],
            ) -> str:
                with sink._lock:
                    if address in sink.refuse:
                        return "550 5.1.1 mailbox unavailable"
                    if sink.busy > 0:
                        sink.busy -= 1
                        return "451 4.3.0 try again later"
                envelope.rcpt_tos.append(address)
                return "250 OK"

            async def handle_DATA(
                self,
                server: Any,
                session: Any,  # noqa: N802
                envelope: Any,
            ) -> str:
                with sink._lock:
                    sink.messages.append(
                        ReceivedMail(
                            envelope.mail_from, tuple(envelope.rcpt_tos), bytes(envelope.content)
                        )
                    )
                return "250 Message accepted"

        # aiosmtpd's readiness check connects to the configured port, so it cannot be 0.
        self._port = _free_port()
        self._controller = Controller(_SinkHandler(), hostname="127.0.0.1", port=self._port)

    @property
    def port(self) -> int:
        return self._port

    def start(self) -> SmtpSink:
        self._controller.start()
        return self

    def stop(self) -> None:
        self._controller.stop()

    def __enter__(self) -> SmtpSink:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
