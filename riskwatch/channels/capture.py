"""The demo's channel: each message becomes files under ``<data_dir>/demo/outbox/``.

Nothing leaves the machine (CONTRACTS "Demo isolation"). The file name is the notification's
idempotency key, so a retried message overwrites its own file instead of adding a copy; files
are written to a temporary name, synced and renamed, so a reader never sees half a message and
the dispatcher confirms only what is on disk.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from riskwatch.channels.base import DeliveryReceipt, OutgoingMessage, PermanentError
from riskwatch.config import Settings
from riskwatch.timeutil import iso_utc

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def capture_dir(settings: Settings) -> Path:
    """The folder captured demo messages are written to."""
    return settings.resolved_data_dir / "demo" / "outbox"


def _write_atomically(path: Path, data: bytes) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


class CaptureTransport:
    """Writes ``<key>.json`` (every form and the payload) and ``<key>.html`` per message."""

    kind = "capture"

    def __init__(self, settings: Settings) -> None:
        self._folder = capture_dir(settings)

    def send(self, message: OutgoingMessage) -> DeliveryReceipt:
        """Write the message files; confirmed once they are synced to disk."""
        name = _UNSAFE.sub("_", message.idempotency_key).strip("._") or "message"
        try:
            self._folder.mkdir(parents=True, exist_ok=True)
            document = {
                "notification_id": message.notification_id,
                "idempotency_key": message.idempotency_key,
                "recipient": message.target,
                "kind": message.kind,
                "created_at": iso_utc(message.created_at),
                "language": message.rendered.language,
                "subject": message.rendered.subject,
                "text": message.rendered.text,
                "short": message.rendered.short,
                "ack_url": message.ack_link,
                "payload": message.payload,
            }
            _write_atomically(
                self._folder / f"{name}.json",
                json.dumps(document, ensure_ascii=False, indent=2, default=str).encode("utf-8"),
            )
            _write_atomically(self._folder / f"{name}.html", message.rendered.html.encode("utf-8"))
        except OSError as exc:
            raise PermanentError(
                f"cannot write captured message to {self._folder}: {exc.strerror}",
                disable_channel=False,
            ) from None
        return DeliveryReceipt(detail=f"captured in {self._folder / name}.json")

    def close(self) -> None:
        """Nothing to release."""
