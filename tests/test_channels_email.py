"""E-mail through a real SMTP server on loopback (aiosmtpd): multipart text + HTML + map image."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from shapely.geometry import MultiPolygon, box
from sqlalchemy.engine import Engine

from riskwatch.channels.base import PermanentError, TransientError
from riskwatch.channels.email import EmailTransport, build_email, smtp_password
from riskwatch.channels.testing import SmtpSink
from riskwatch.config import Settings, load_settings
from riskwatch.db.engine import session_scope
from riskwatch.db.models import Area
from riskwatch.dispatch import dispatch_due
from riskwatch.experts import AddedExpert, ChannelSpec, add_expert
from tests.delivery import loopback, seeded
from tests.test_channels_webhook import message
from tests.test_dispatch import (
    T0,
    channel,
    enqueue,
    make_alert,
    notification,
)


@pytest.fixture
def sink() -> Iterator[SmtpSink]:
    yield from loopback(SmtpSink())


def smtp_settings(sink: SmtpSink, database_url: str = "", **smtp: object) -> Settings:
    options = {
        "host": "127.0.0.1",
        "port": sink.port,
        "security": "none",
        "from_address": "alerts@riskwatch.example",
        "timeout_seconds": 5.0,
    }
    options.update(smtp)
    overrides: dict[str, object] = {
        "smtp": options,
        "allow_private_addresses": True,
        "delivery": {"backoff_base_seconds": 10.0},
    }
    if database_url:
        overrides["database_url"] = database_url
    return load_settings(overrides=overrides)


def email_message(**kwargs: object):  # noqa: ANN201 - an OutgoingMessage for an address
    base = message("expert@example.org", **kwargs)  # type: ignore[arg-type]
    return base


def test_multipart_text_html_and_inline_image_with_a_stable_message_id(sink) -> None:
    from dataclasses import replace

    png = b"\x89PNG\r\n\x1a\n" + b"0" * 100
    outgoing = replace(email_message(), map_png=png, channel_kind="email")
    receipt = EmailTransport(smtp_settings(sink)).send(outgoing)
    assert "127.0.0.1" in receipt.detail
    assert len(sink.messages) == 1
    mail = sink.messages[0]
    assert mail.recipients == ("expert@example.org",)
    parsed = mail.message()
    assert parsed["Message-ID"] == "<alert-abc@riskwatch.example>"
    assert parsed["Subject"].startswith("[riskwatch] Critical")
    assert parsed.get_content_type() == "multipart/alternative"
    plain = parsed.get_body(preferencelist=("plain",))
    html = parsed.get_body(preferencelist=("html",))
    assert "Kalomira (XD0709)" in plain.get_content()
    assert "<html" in html.get_content()
    images = [part for part in parsed.walk() if part.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0].get_content() == png
    assert images[0]["Content-ID"] == "<map-alert-abc@riskwatch>"
    # The same notification builds the same message (retries are identical).
    again = build_email(outgoing, "alerts@riskwatch.example")
    assert again["Message-ID"] == parsed["Message-ID"]


def test_recipient_refused_with_5xx_is_permanent_and_4xx_transient(sink) -> None:
    transport = EmailTransport(smtp_settings(sink))
    sink.refuse.add("expert@example.org")
    with pytest.raises(PermanentError) as caught:
        transport.send(email_message())
    assert "550" in str(caught.value) and caught.value.disable_channel
    sink.refuse.clear()
    sink.busy = 1
    with pytest.raises(TransientError) as transient:
        transport.send(email_message())
    assert "451" in str(transient.value)
    # The same session carries on after the refusals.
    transport.send(email_message())
    transport.close()
    assert len(sink.messages) == 1


def test_starttls_required_but_not_offered_is_a_transient_configuration_error(sink) -> None:
    with pytest.raises(TransientError) as caught:
        EmailTransport(smtp_settings(sink, security="starttls")).send(email_message())
    assert "STARTTLS" in str(caught.value) and sink.messages == []


def test_no_smtp_host_is_transient_and_names_the_setting() -> None:
    with pytest.raises(TransientError) as caught:
        EmailTransport(load_settings()).send(email_message())
    assert "smtp.host" in str(caught.value)


def test_password_comes_from_the_environment_or_a_file(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("RISKWATCH_SMTP__PASSWORD", "from-env")
    assert smtp_password(load_settings()) == "from-env"
    monkeypatch.delenv("RISKWATCH_SMTP__PASSWORD")
    secret = tmp_path / "smtp-password"
    secret.write_text("from-file\n")
    assert (
        smtp_password(load_settings(overrides={"smtp": {"password_file": str(secret)}}))
        == "from-file"
    )
    assert "from-env" not in repr(load_settings(overrides={"smtp": {"password": "from-env"}}))


def _with_geometry(engine: Engine) -> None:
    shapes = {"XD07": box(0, 0, 2, 1), "XD0709": box(0, 0, 1, 1), "XD0710": box(1, 0, 2, 1)}
    with session_scope(engine) as session:
        for pcode, shape in shapes.items():
            area = session.get(Area, pcode)
            area.geometry = MultiPolygon([shape])
            session.add(area)


def _email_expert(
    engine: Engine, settings: Settings, name: str, address: str, **options: str
) -> AddedExpert:
    """An expert deployed to XD07 with one e-mail channel to `address`."""
    return add_expert(
        engine, settings, name, channels=[ChannelSpec("email", address)], areas=["XD07"], **options
    )


def test_dispatch_sends_email_with_the_static_map(database_url: str, sink: SmtpSink) -> None:
    settings = smtp_settings(sink, database_url)
    engine = seeded(settings)
    _with_geometry(engine)
    added = _email_expert(engine, settings, "Mail expert", "expert@example.org", language="es")
    nid = enqueue(
        engine, added.expert_id, added.channel_ids[0], [make_alert(engine)], language="es"
    )
    result = dispatch_due(engine, settings, now=T0)
    assert result.counts["delivered"] == 1, notification(engine, nid).last_error
    parsed = sink.messages[0].message()
    assert parsed["Content-Language"] == "es" and "nuevo foco" in parsed["Subject"]
    images = [p for p in parsed.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1, "the e-mail has no map image"
    png = images[0].get_content()
    assert png.startswith(b"\x89PNG") and 2_000 < len(png) < 300_000
    html = parsed.get_body(preferencelist=("html",)).get_content()
    content_id = images[0]["Content-ID"].strip("<>")
    assert f'src="cid:{content_id}"' in html
    assert "/ack/" in html and "http://127.0.0.1:8050/area/XD0709" in html
    assert channel(engine, added.channel_ids[0]).last_success_at is not None


def test_dispatch_mailbox_gone_disables_the_email_channel(database_url, sink) -> None:
    settings = smtp_settings(sink, database_url)
    engine = seeded(settings)
    added = _email_expert(engine, settings, "Gone", "gone@example.org")
    sink.refuse.add("gone@example.org")
    nid = enqueue(engine, added.expert_id, added.channel_ids[0], [make_alert(engine)])
    dispatch_due(engine, settings, now=T0)
    assert notification(engine, nid).status == "failed"
    assert channel(engine, added.channel_ids[0]).disabled_at is not None
    # A relay that is down is transient, and does not disable anything.
    sink.refuse.clear()
    other = _email_expert(engine, settings, "Busy", "busy@example.org")
    sink.busy = 1
    busy = enqueue(engine, other.expert_id, other.channel_ids[0], [make_alert(engine)])
    dispatch_due(engine, settings, now=T0)
    assert notification(engine, busy).status == "retrying"
    dispatch_due(engine, settings, now=T0 + timedelta(hours=1))
    assert notification(engine, busy).status == "delivered"
    engine.dispose()
