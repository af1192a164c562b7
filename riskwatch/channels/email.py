"""E-mail over SMTP: multipart text + HTML, with the small static map as an inline image.

Security follows ``smtp.security``: ``starttls`` (upgrade required: a server that does not offer
it is an error, never a silent fallback to plain text), ``tls`` (implicit TLS) or ``none``
(a relay on loopback). The password comes from ``RISKWATCH_SMTP__PASSWORD`` or
``smtp.password_file``, never from the command line. One SMTP session carries every message of
a dispatch run. The Message-ID is derived from the idempotency key, so a message re-sent after
a retry has the same id and mail clients can fold duplicates.

Errors: a 5xx answer to the recipient is permanent (the mailbox does not exist: the channel is
disabled); 4xx answers, refused or lost connections, timeouts and login failures are transient
(the relay, not the expert's address, is the problem).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime

from riskwatch.channels.base import (
    DeliveryReceipt,
    OutgoingMessage,
    PermanentError,
    TransientError,
)
from riskwatch.config import Settings

MAP_CID_DOMAIN = "riskwatch"


def map_content_id(idempotency_key: str) -> str:
    """The Content-ID (without brackets) of a message's inline map image."""
    return f"map-{idempotency_key}@{MAP_CID_DOMAIN}"


def build_email(message: OutgoingMessage, from_address: str) -> EmailMessage:
    """The MIME message: text/plain and text/html alternatives, the map inline in the HTML."""
    email = EmailMessage()
    email["Subject"] = message.rendered.subject
    email["From"] = from_address
    email["To"] = message.target
    email["Date"] = format_datetime(message.created_at)
    domain = from_address.rpartition("@")[2] or MAP_CID_DOMAIN
    email["Message-ID"] = f"<{message.idempotency_key}@{domain}>"
    email["Auto-Submitted"] = "auto-generated"
    email["X-Riskwatch-Notification"] = message.idempotency_key
    email.set_content(message.rendered.text)
    email.add_alternative(message.rendered.html, subtype="html")
    # Content-* headers are set last: set_content/add_alternative move or drop earlier ones.
    email["Content-Language"] = message.rendered.language
    if message.map_png:
        alternatives = email.get_payload()
        assert isinstance(alternatives, list)
        html_part = alternatives[1]
        assert isinstance(html_part, EmailMessage)
        html_part.add_related(
            message.map_png,
            maintype="image",
            subtype="png",
            cid=f"<{map_content_id(message.idempotency_key)}>",
            filename="map.png",
            disposition="inline",
        )
    return email


def smtp_password(settings: Settings) -> str:
    """The SMTP password: the setting (from the environment), else the password file."""
    password = settings.smtp.password.get_secret_value()
    if password:
        return password
    path = settings.smtp.password_file
    if path is None:
        return ""
    try:
        return path.expanduser().read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise TransientError(f"cannot read smtp.password_file {path}: {exc.strerror}") from None


class EmailTransport:
    """Sends e-mails through the configured relay, one session per dispatch run."""

    kind = "email"

    def __init__(self, settings: Settings) -> None:
        self._settings = settings.smtp
        self._password_settings = settings
        self._smtp: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        config = self._settings
        if not config.host:
            raise TransientError("e-mail is not configured: set smtp.host (RISKWATCH_SMTP__HOST)")
        context = ssl.create_default_context()
        try:
            smtp: smtplib.SMTP
            if config.security == "tls":
                smtp = smtplib.SMTP_SSL(
                    config.host, config.port, timeout=config.timeout_seconds, context=context
                )
            else:
                smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_seconds)
            smtp.ehlo()
            if config.security == "starttls":
                if not smtp.has_extn("starttls"):
                    smtp.close()
                    raise TransientError(
                        f"SMTP server {config.host}:{config.port} does not offer STARTTLS; "
                        "set smtp.security (tls, or none for a loopback relay)"
                    )
                smtp.starttls(context=context)
                smtp.ehlo()
            if config.username:
                smtp.login(config.username, smtp_password(self._password_settings))
        except smtplib.SMTPAuthenticationError as exc:
            raise TransientError(
                f"SMTP login as {config.username!r} refused ({exc.smtp_code}); check "
                "smtp.username and the password"
            ) from None
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise TransientError(
                f"cannot open an SMTP session with {config.host}:{config.port}: {exc!r}"
            ) from None
        return smtp

    def close(self) -> None:
        """End the SMTP session politely."""
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (smtplib.SMTPException, OSError):
                self._smtp.close()
            self._smtp = None

    def send(self, message: OutgoingMessage) -> DeliveryReceipt:
        """Hand the message to the relay; return once it accepted it (250 after DATA)."""
        email = build_email(message, self._settings.from_address)
        for attempt in (1, 2):
            reused = self._smtp is not None
            if self._smtp is None:
                self._smtp = self._connect()
            try:
                refused = self._smtp.send_message(
                    email, from_addr=self._settings.from_address, to_addrs=[message.target]
                )
            except smtplib.SMTPRecipientsRefused as exc:
                self._reset()
                code, text = next(iter(exc.recipients.values()), (0, b""))
                raise self._classify(code, text, "recipient refused") from None
            except smtplib.SMTPSenderRefused as exc:
                self._reset()
                raise self._classify(
                    exc.smtp_code, exc.smtp_error, "sender refused", disable=False
                ) from None
            except smtplib.SMTPDataError as exc:
                self._reset()
                raise self._classify(
                    exc.smtp_code, exc.smtp_error, "message refused", disable=False
                ) from None
            except (smtplib.SMTPServerDisconnected, ConnectionResetError, BrokenPipeError) as exc:
                self._drop()
                if reused and attempt == 1:
                    continue  # the relay closed an idle session: open a new one once
                raise TransientError(f"SMTP session lost: {exc!r}") from None
            except (smtplib.SMTPException, OSError) as exc:
                self._drop()
                raise TransientError(f"SMTP error: {exc!r}") from None
            if refused:
                code, text = next(iter(refused.values()))
                raise self._classify(code, text, "recipient refused")
            return DeliveryReceipt(detail=f"accepted by {self._settings.host}")
        raise TransientError("SMTP session kept failing")

    @staticmethod
    def _classify(code: int, text: bytes | str, what: str, *, disable: bool = True) -> Exception:
        reason = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
        described = f"SMTP {what}: {code} {reason}".strip()
        if 500 <= code < 600:
            return PermanentError(described, disable_channel=disable)
        return TransientError(described)

    def _reset(self) -> None:
        """After a refused transaction, RSET so the session can carry the next message."""
        if self._smtp is None:
            return
        try:
            self._smtp.rset()
        except (smtplib.SMTPException, OSError):
            self._drop()

    def _drop(self) -> None:
        if self._smtp is not None:
            self._smtp.close()
            self._smtp = None


__all__ = ["EmailTransport", "build_email", "map_content_id", "smtp_password"]
