"""Message rendering: content, languages, SMS limits (160 GSM-7 / 70 UCS-2), privacy, stability."""

from __future__ import annotations

import copy
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from riskwatch.messages import render_notification, sms_length
from riskwatch.messages.locales import EN, TABLES
from riskwatch.messages.sms import fit_sms, fold_to_gsm7, is_gsm7
from tests.test_dispatch import alert_item, payload_for

CREATED = datetime(2026, 5, 1, 8, 0, tzinfo=UTC)
BASE = "http://127.0.0.1:8050"
# A realistic link: the ack token of a few alerts is about 30 characters.
ACK = f"{BASE}/ack/AWnxRQAIAwoLDHqIb3AanFp0UaMM3w"


def render(payload, ack: str | None = ACK):  # noqa: ANN001, ANN201
    return render_notification(payload, created_at=CREATED, ack_link=ack, base_url=BASE)


def test_every_language_has_every_text() -> None:
    for language, table in TABLES.items():
        assert set(table) == set(EN), f"{language} misses {set(EN) - set(table)}"
        for key, text in table.items():
            assert text.count("{") == EN[key].count("{"), (language, key)


def test_the_english_message_says_what_where_since_how_sure_why_and_links() -> None:
    message = render(payload_for(3, [11]))
    text = message.text
    for expected in (
        "new hotspot",  # what happened
        "Kalomira (XD0709)",  # area name and pcode
        "region Terubo (XD07)",  # admin1
        "Demoland",  # country
        "Since: 2026-04-30",  # since when
        "reliability 84%",  # how sure
        "IDPs per resident (3.2), Abductions (2.1)",  # top drivers
        "high → very high (+1.3)",  # change since last round
        "hotspot (99% confidence), new",  # hotspot class
        "as of 2026-04-30 (1 days old)",  # data freshness
        f"{BASE}/area/XD0709",  # evidence link
        ACK,  # acknowledgement link
        "+6,400 people displaced",
    ):
        assert expected in text, expected
    assert message.subject == "[riskwatch] Critical: new hotspot in Kalomira, Terubo (Demoland)"
    assert f'href="{ACK}"' in message.html and 'lang="en" dir="ltr"' in message.html


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("fr", ["nouveau foyer", "Depuis", "Principaux facteurs", "Confirmer"]),
        ("es", ["nuevo foco", "Desde", "Factores principales", "Confirmar"]),
        ("ar", ["بؤرة جديدة", "منذ", "أهم العوامل", "تأكيد"]),
    ],
)
def test_templates_follow_the_payload_language(language: str, words: list[str]) -> None:
    message = render(payload_for(3, [11], language=language))
    assert message.language == language
    for word in words:
        assert word in message.text, word
    if language == "ar":
        assert message.direction == "rtl" and 'dir="rtl"' in message.html


def test_unknown_language_falls_back_to_english() -> None:
    assert render(payload_for(3, [11], language="pt")).language == "en"


def test_grouped_message_lists_every_alert_most_severe_first() -> None:
    payload = payload_for(3, [11])
    payload["alerts"] = [
        alert_item(12, "XD0710", "Rivoné", severity="warning"),
        alert_item(11, "XD0709", "Kalomira", severity="critical"),
    ]
    message = render(payload)
    assert message.subject == "[riskwatch] Critical: 2 alerts in Terubo (Demoland)"
    assert message.text.index("Kalomira") < message.text.index("Rivoné")


def test_escalation_and_digest_are_announced() -> None:
    escalation = render(payload_for(3, [11], kind="escalation"))
    assert escalation.subject.startswith("[riskwatch] Escalation: not acknowledged · ")
    assert "focal point" in escalation.text
    digest = render(payload_for(3, [11, 12], kind="digest"))
    assert digest.subject == "[riskwatch] Daily digest: 2 alerts (Demoland)"


@pytest.mark.parametrize("language", ["en", "fr", "es"])
@pytest.mark.parametrize("count", [1, 3, 12])
def test_short_form_fits_one_gsm7_sms_of_160(language: str, count: int) -> None:
    payload = payload_for(3, list(range(11, 11 + count)), language=language)
    short = render(payload).short
    length = sms_length(short)
    assert length.encoding == "gsm7", short
    assert length.length <= 160, short
    assert ACK in short


@pytest.mark.parametrize("count", [1, 3])
def test_arabic_short_form_needs_ucs2_and_fits_70(count: int) -> None:
    short = render(payload_for(3, list(range(11, 11 + count)), language="ar")).short
    length = sms_length(short)
    assert length.encoding == "ucs2" and length.limit == 70
    assert len(short) <= 70, short
    assert ACK in short, short


def test_short_form_drops_the_link_rather_than_overflowing() -> None:
    long_link = BASE + "/ack/" + "x" * 200
    short = render(payload_for(3, [11], language="ar"), ack=long_link).short
    assert len(short) <= 70 and "xxxx" not in short


def test_gsm7_counting_and_folding() -> None:
    assert sms_length("a" * 160).fits and not sms_length("a" * 161).fits
    assert sms_length("€" * 80).length == 160 and sms_length("€" * 80).fits  # extension: 2 each
    assert sms_length("é à ñ ü").encoding == "gsm7"
    assert sms_length("ê").encoding == "ucs2" and sms_length("ê" * 70).fits
    assert not sms_length("ê" * 71).fits
    assert (
        fold_to_gsm7("Élevée, très, déplacés, crítica, acción, œuvre…, fenêtre")
        == "Élevée, très, déplacés, critica, accion, oeuvre..., fenetre"
    )
    assert not is_gsm7(fold_to_gsm7("تنبيه"))
    cut = fit_sms(["ب" * 200])
    assert len(cut) == 70 and cut.endswith("…")


@settings(max_examples=60, deadline=None)
@given(
    name=st.text(min_size=1, max_size=60),
    admin1=st.text(min_size=1, max_size=60),
    language=st.sampled_from(["en", "fr", "es", "ar"]),
    count=st.integers(min_value=1, max_value=6),
)
def test_short_form_always_fits_whatever_the_names(name, admin1, language, count) -> None:
    payload = payload_for(3, list(range(1, count + 1)), language=language)
    payload["group"]["admin1_name"] = admin1
    for alert in payload["alerts"]:
        alert["name"] = name
    short = render(payload).short
    assert sms_length(short).fits, short


def test_rendering_ignores_fields_outside_the_contract_and_escapes_html() -> None:
    payload = payload_for(3, [11])
    payload["alerts"][0]["name"] = "<script>alert(1)</script>"
    payload["alerts"][0]["latitude"] = -31.123456
    payload["alerts"][0]["site_coordinates"] = "43.1,-31.2"
    payload["alerts"][0]["victim_name"] = "Jane Doe"
    message = render(payload)
    for form in (message.text, message.html, message.short, message.subject):
        assert "-31.123456" not in form and "43.1,-31.2" not in form and "Jane Doe" not in form
    assert "<script>" not in message.html and "&lt;script&gt;" in message.html


def test_rendering_depends_only_on_payload_and_creation_time() -> None:
    payload = payload_for(3, [11, 12])
    first = render(copy.deepcopy(payload))
    second = render(copy.deepcopy(payload))
    assert first == second
    assert "2026-05-01 08:00 UTC" in first.text
