"""Apprise through a real HTTP receiver on loopback (Apprise's json:// service), and capture."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from riskwatch.channels.apprise import AppriseTransport, check_apprise_url
from riskwatch.channels.base import PermanentError, TransientError
from riskwatch.channels.capture import CaptureTransport, capture_dir
from riskwatch.channels.testing import WebhookReceiver
from riskwatch.config import load_settings
from riskwatch.dispatch import dispatch_due
from riskwatch.experts import ChannelSpec, ExpertError, add_expert
from tests.delivery import loopback, seeded
from tests.test_channels_webhook import message
from tests.test_dispatch import (
    T0,
    channel,
    delivery_settings,
    enqueue,
    make_alert,
    notification,
)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    yield from loopback(WebhookReceiver())


def json_url(receiver: WebhookReceiver) -> str:
    return receiver.url.replace("http://", "json://")


def allowed(allow: bool = True):  # noqa: ANN201
    return load_settings(
        overrides={"allow_private_addresses": allow, "delivery": {"http_timeout_seconds": 3.0}}
    )


def test_apprise_json_service_receives_subject_and_text(receiver) -> None:
    receipt = AppriseTransport(allowed()).send(message(json_url(receiver)))
    assert "Apprise" in receipt.detail
    assert len(receiver.received) == 1
    body = json.loads(receiver.received[0].body)
    assert body["title"].startswith("[riskwatch] Critical")
    assert "Kalomira (XD0709)" in body["message"] and "/ack/" in body["message"]


@pytest.mark.parametrize(("status", "error"), [(503, TransientError), (410, PermanentError)])
def test_apprise_failures_are_classified(receiver, status, error) -> None:
    receiver.always(status)
    with pytest.raises(error) as caught:
        AppriseTransport(allowed()).send(message(json_url(receiver)))
    assert str(status) in str(caught.value)
    assert "127.0.0.1" not in str(caught.value) or "hook" not in str(caught.value)


def test_apprise_private_targets_are_refused_unless_allowed(receiver) -> None:
    with pytest.raises(PermanentError) as caught:
        AppriseTransport(allowed(False)).send(message(json_url(receiver)))
    assert "allow_private_addresses" in str(caught.value) and receiver.received == []
    with pytest.raises(PermanentError):
        check_apprise_url("nonsense://whatever", allow_private_addresses=True)
    # A service URL whose "host" is a token is not resolved as a host name.
    check_apprise_url(
        "tgram://123456789:abcdefgh_ijklmnop/12315544/", allow_private_addresses=False
    )


def test_apprise_channel_through_the_dispatcher(database_url, receiver) -> None:
    settings = delivery_settings(database_url)
    engine = seeded(settings)
    with pytest.raises(ExpertError):
        add_expert(
            engine,
            delivery_settings(database_url).model_copy(update={"allow_private_addresses": False}),
            "Refused",
            channels=[ChannelSpec("apprise", json_url(receiver))],
        )
    added = add_expert(
        engine,
        settings,
        "Chat expert",
        channels=[ChannelSpec("apprise", json_url(receiver))],
        areas=["XD07"],
    )
    stored = channel(engine, added.channel_ids[0])
    assert stored.target_redacted == "json://***"
    assert str(receiver.url.split(":")[-1]) not in stored.target_encrypted
    nid = enqueue(engine, added.expert_id, added.channel_ids[0], [make_alert(engine)])
    receiver.fail_next(1, 503)
    dispatch_due(engine, settings, now=T0)
    assert notification(engine, nid).status == "retrying"
    dispatch_due(engine, settings, now=T0.replace(hour=12))
    assert notification(engine, nid).status == "delivered"
    assert len(receiver.received) == 2
    engine.dispose()


def test_capture_writes_one_file_per_notification_and_overwrites_on_retry(tmp_path) -> None:
    settings = load_settings(overrides={"data_dir": str(tmp_path / "data")})
    transport = CaptureTransport(settings)
    first = message("expert-fr", key="alert-123")
    transport.send(first)
    transport.send(first)  # a retry writes the same file again
    files = sorted(p.name for p in capture_dir(settings).iterdir())
    assert files == ["alert-123.html", "alert-123.json"]
    document = json.loads((capture_dir(settings) / "alert-123.json").read_text())
    assert document["recipient"] == "expert-fr" and document["subject"].startswith("[riskwatch]")
    assert document["payload"]["alerts"][0]["pcode"] == "XD0709"
    assert "latitude" not in json.dumps(document) and "longitude" not in json.dumps(document)


def test_sms_like_services_get_the_short_form() -> None:
    """A service limited to one SMS (Apprise body_maxlen <= 160) receives the short form only."""
    import apprise
    from apprise.decorators import notify

    from riskwatch.messages import sms_length

    sent: list[tuple[str, str]] = []

    @notify(on="rwtestsms", name="riskwatch test SMS gateway")
    def _gateway(body: str, title: str, notify_type: str, *args: object, **kwargs: object) -> bool:
        sent.append((title, body))
        return True

    plugin = apprise.Apprise.instantiate("rwtestsms://gateway/15550100")
    type(plugin).body_maxlen = 160  # what Apprise's SMS services declare
    AppriseTransport(allowed()).send(message("rwtestsms://gateway/15550100"))
    assert len(sent) == 1
    title, body = sent[0]
    assert title == "" and body.startswith("CRITICAL: new hotspot, Kalomira XD0709")
    length = sms_length(body)
    assert length.encoding == "gsm7" and length.fits and "/ack/" in body
