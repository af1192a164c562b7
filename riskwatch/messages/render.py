"""Render a notification payload into subject, plain text, HTML and a short SMS form.

The payload is the contract written by the alerts engine (see the common brief): only the
fields named there are read, so nothing else (no personal data, no coordinates) can reach a
message through the renderer. Rendering depends only on the payload, the notification's
creation time and the links, never on the current time: a retried message is identical.
"""

from __future__ import annotations

import functools
import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from riskwatch.messages.locales import RIGHT_TO_LEFT, table_for
from riskwatch.messages.sms import fit_sms

SEVERITY_ORDER = ("critical", "high", "warning", "medium", "low", "info")
MAX_DRIVERS = 3


@dataclass(frozen=True)
class RenderedMessage:
    """One message in every form a channel may need, in one language."""

    language: str
    subject: str
    text: str
    html: str
    short: str
    direction: str = "ltr"


class _Texts:
    """Lookup with format arguments; a missing key falls back to its English text."""

    def __init__(self, language: str | None) -> None:
        from riskwatch.messages.locales import EN

        self.language, self._table = table_for(language)
        self._fallback = EN

    def __call__(self, key: str, **values: Any) -> str:
        template = self._table.get(key) or self._fallback.get(key) or key
        return template.format(**values) if values else template

    def maybe(self, prefix: str, value: Any) -> str:
        """The translated vocabulary word (risk class, hotspot class...), or the raw value."""
        if value in (None, ""):
            return ""
        key = f"{prefix}.{value}"
        if key in self._table:
            return self._table[key]
        return str(value).replace("_", " ")


def _severity_rank(severity: Any) -> int:
    text = str(severity or "").lower()
    return SEVERITY_ORDER.index(text) if text in SEVERITY_ORDER else len(SEVERITY_ORDER)


def top_severity(alerts: Sequence[Mapping[str, Any]]) -> str:
    """The most severe severity among ``alerts`` (``info`` when none is given)."""
    severities = [str(a.get("severity") or "info").lower() for a in alerts] or ["info"]
    return min(severities, key=_severity_rank)


def _what(alert: Mapping[str, Any], t: _Texts) -> str:
    rule = str(alert.get("rule") or "").lower()
    temporal = str(alert.get("temporal_class") or "")
    if "stale" in rule:
        return t("what.stale")
    if "surge" in rule:
        return t("what.surge")
    if "hotspot" in rule:
        # The temporal class says which it is (rule names may cover both, e.g.
        # hotspot_new_or_intensifying); the rule name only when the class is silent.
        if temporal == "intensifying":
            return t("what.hotspot_intensifying")
        if temporal == "new":
            return t("what.hotspot_new")
        if "intensif" in rule and "new" not in rule:
            return t("what.hotspot_intensifying")
        if "new" in rule and "intensif" not in rule:
            return t("what.hotspot_new")
        return t("what.hotspot")
    if "risk" in rule or "class" in rule:
        return t("what.risk_rising", risk_class=t.maybe("risk", alert.get("risk_class")))
    return t("what.other", rule=rule.replace("_", " "))


def _number(value: Any, language: str) -> str:
    try:
        number = int(round(float(value)))
    except (TypeError, ValueError):
        return str(value)
    text = f"{number:,}"
    return text.replace(",", " ") if language in ("fr", "es") else text


def _percent(value: Any) -> str:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return ""
    if number <= 1.0:
        number *= 100.0
    return f"{number:.0f}%"


def _day(value: Any) -> str:
    text = str(value or "")
    return text[:10]


def _link(url: Any, base_url: str) -> str:
    text = str(url or "")
    if text.startswith("/"):
        return base_url.rstrip("/") + text
    return text


def _place(alert: Mapping[str, Any]) -> str:
    name = alert.get("name") or alert.get("pcode") or ""
    pcode = alert.get("pcode") or ""
    return f"{name} ({pcode})" if pcode and pcode != name else str(name)


def _change(alert: Mapping[str, Any], t: _Texts) -> str:
    current = t.maybe("risk", alert.get("risk_class"))
    previous_class = alert.get("previous_risk_class")
    delta = alert.get("risk_change")
    if previous_class in (None, ""):
        return t("change.first", current=current)
    try:
        delta_value = float(delta) if delta is not None else 0.0
    except (TypeError, ValueError):
        delta_value = 0.0
    if previous_class == alert.get("risk_class"):
        return t("change.same", current=current, delta=delta_value)
    return t(
        "change.up", previous=t.maybe("risk", previous_class), current=current, delta=delta_value
    )


def _drivers(alert: Mapping[str, Any]) -> str:
    parts = []
    for driver in list(alert.get("top_drivers") or [])[:MAX_DRIVERS]:
        label = driver.get("label") or driver.get("indicator") or ""
        contribution = driver.get("contribution")
        try:
            parts.append(f"{label} ({float(contribution):.1f})")
        except (TypeError, ValueError):
            parts.append(str(label))
    return ", ".join(parts)


def _alert_fields(alert: Mapping[str, Any], t: _Texts, base_url: str) -> list[tuple[str, str]]:
    """(label, value) rows describing one alert, in reading order; empty values dropped."""
    language = t.language
    where = _place(alert)
    admin1 = alert.get("admin1_name") or ""
    if admin1 and alert.get("admin1_pcode") and alert.get("admin1_pcode") != alert.get("pcode"):
        where += f", {t('label.admin1')} {admin1} ({alert.get('admin1_pcode')})"
    if alert.get("country_name"):
        where += f", {alert.get('country_name')}"
    risk = t.maybe("risk", alert.get("risk_class"))
    if isinstance(alert.get("risk"), int | float):
        risk += f" ({float(alert['risk']):.1f}/10)"
    hotspot = t.maybe("hotspot", alert.get("hotspot_class"))
    temporal = alert.get("temporal_class")
    if hotspot and temporal not in (None, "", "none"):
        hotspot += f", {t.maybe('temporal', temporal)}"
    freshness = ""
    if alert.get("data_as_of"):
        freshness = t(
            "label.data_as_of",
            date=_day(alert.get("data_as_of")),
            days=alert.get("freshness_days", "?"),
        )
    stale = [str(s) for s in alert.get("stale_sources") or []]
    if stale:
        freshness = "; ".join(
            p for p in (freshness, t("label.stale_sources", sources=", ".join(stale))) if p
        )
    surge = ""
    if alert.get("surge"):
        surge = (
            t("label.surge_size", size=_number(alert.get("surge_size"), language))
            if alert.get("surge_size") not in (None, "")
            else t("label.surge")
        )
    reliability = _percent(alert.get("reliability"))
    rows = [
        (t("label.where"), where),
        (t("label.since"), _day(alert.get("since"))),
        (t("label.how_sure"), t("label.reliability", value=reliability) if reliability else ""),
        (t("label.risk"), risk),
        (t("label.change"), _change(alert, t) if alert.get("risk_class") else ""),
        (t("label.hotspot"), hotspot if alert.get("hotspot_class") else ""),
        (t("label.surge"), surge),
        (t("label.drivers"), _drivers(alert)),
        (t("label.freshness"), freshness),
        (t("label.evidence"), _link(alert.get("area_url"), base_url)),
    ]
    return [(label, value) for label, value in rows if value]


def _subject(payload: Mapping[str, Any], alerts: Sequence[Mapping[str, Any]], t: _Texts) -> str:
    group = payload.get("group") or {}
    kind = str(payload.get("kind") or "alert")
    severity = t.maybe("severity", top_severity(alerts))
    country = group.get("country_name") or group.get("country_iso3") or ""
    admin1 = group.get("admin1_name") or group.get("admin1_pcode") or country
    if kind == "digest":
        subject = t("subject.digest", count=len(alerts), country=country)
    elif len(alerts) == 1:
        alert = alerts[0]
        subject = t(
            "subject.one",
            severity=severity,
            what=_what(alert, t),
            area=alert.get("name") or alert.get("pcode") or "",
            admin1=alert.get("admin1_name") or admin1,
            country=country,
        )
    else:
        subject = t(
            "subject.many", severity=severity, count=len(alerts), admin1=admin1, country=country
        )
    if kind in ("escalation", "resolved"):
        subject = subject.replace("[riskwatch] ", f"[riskwatch] {t('kind.' + kind)} · ", 1)
    return subject


def _short(
    payload: Mapping[str, Any],
    alerts: Sequence[Mapping[str, Any]],
    t: _Texts,
    ack_link: str | None,
) -> str:
    group = payload.get("group") or {}
    kind = str(payload.get("kind") or "alert")
    severity = (
        t.maybe("severity", top_severity(alerts)).upper()
        if t.language != "ar"
        else t.maybe("severity", top_severity(alerts))
    )
    prefix = f"{t('kind.' + kind)} " if kind in ("escalation", "digest") else ""
    admin1 = group.get("admin1_name") or group.get("admin1_pcode") or ""
    link = f" {t('short.ack')} {ack_link}" if ack_link else ""
    bare_link = f" {ack_link}" if ack_link else ""
    if len(alerts) == 1:
        alert = alerts[0]
        area = f"{alert.get('name') or ''} {alert.get('pcode') or ''}".strip()
        what = _what(alert, t)
        risk = t.maybe("risk", alert.get("risk_class"))
        candidates = [
            f"{prefix}{severity}: {what}, {area}, {admin1}. {t('label.risk')}: {risk}.{link}",
            f"{prefix}{severity}: {what}, {area}.{link}",
            f"{severity}: {what} {alert.get('pcode') or ''}.{bare_link}",
            f"{severity} {alert.get('pcode') or ''}{bare_link}",
        ]
    else:
        pcodes = " ".join(list(dict.fromkeys(str(a.get("pcode") or "") for a in alerts))[:4])
        many = t("short.many", count=len(alerts))
        candidates = [
            f"{prefix}{severity}: {many}, {admin1}: {pcodes}.{link}",
            f"{prefix}{severity}: {many}, {admin1}.{link}",
            f"{severity}: {many} {group.get('admin1_pcode') or ''}{bare_link}",
            f"{severity} {many}{bare_link}",
            f"{severity} {group.get('admin1_pcode') or ''}{bare_link}",
        ]
    # Without a link as a last resort: the long form still carries it on the other channels.
    candidates.append(candidates[1].replace(link, "") if link else candidates[1])
    return fit_sms(candidates)


def _html(
    alerts: Sequence[Mapping[str, Any]],
    fields: list[list[tuple[str, str]]],
    group: Mapping[str, Any],
    t: _Texts,
    *,
    subject: str,
    intro: str,
    created: str,
    direction: str,
    ack_link: str | None,
    map_cid: str | None,
) -> str:
    esc = html.escape
    parts = [
        "<!DOCTYPE html>",
        f'<html lang="{t.language}" dir="{direction}"><head><meta charset="utf-8">'
        f"<title>{esc(subject)}</title></head>",
        '<body style="font-family:Arial,Helvetica,sans-serif;font-size:14px;color:#222;'
        'max-width:640px">',
        f'<h2 style="font-size:17px;margin:0 0 8px">{esc(subject)}</h2>',
        f"<p>{esc(intro)}</p>",
    ]
    if group.get("admin1_name") or group.get("country_name"):
        where = ", ".join(
            str(p) for p in (group.get("admin1_name"), group.get("country_name")) if p
        )
        parts.append(f'<p style="color:#555">{esc(where)}</p>')
    if map_cid:
        parts.append(
            f'<p><img src="cid:{esc(map_cid)}" alt="{esc(t("label.where"))}" width="480" '
            'style="max-width:100%;border:1px solid #ccc"></p>'
        )
    for alert, rows in zip(alerts, fields, strict=True):
        severity = t.maybe("severity", str(alert.get("severity") or "info").lower())
        parts.append(
            f'<h3 style="font-size:15px;margin:16px 0 4px">[{esc(severity)}] '
            f"{esc(_what(alert, t))}: {esc(_place(alert))}</h3>"
        )
        parts.append('<table style="border-collapse:collapse">')
        for label, value in rows:
            cell = esc(value)
            if label == t("label.evidence"):
                cell = f'<a href="{esc(value)}">{esc(value)}</a>'
            parts.append(
                f'<tr><th style="text-align:start;padding:2px 8px 2px 0;color:#555;'
                f'font-weight:normal;vertical-align:top">{esc(label)}</th>'
                f'<td style="padding:2px 0">{cell}</td></tr>'
            )
        parts.append("</table>")
    if ack_link:
        parts.append(
            f'<p style="margin:20px 0"><a href="{esc(ack_link)}" style="background:#1f5f99;'
            f'color:#fff;padding:10px 16px;text-decoration:none;border-radius:4px">'
            f"{esc(t('label.ack'))}</a></p>"
        )
    parts.append(
        f'<p style="color:#777;font-size:12px">{esc(t("footer"))}<br>riskwatch · {esc(created)}</p>'
    )
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"


def render_notification(
    payload: Mapping[str, Any],
    *,
    created_at: datetime,
    ack_link: str | None,
    base_url: str,
    map_cid: str | None = None,
    with_html: bool = True,
) -> RenderedMessage:
    """Every form of the message for ``payload`` in the payload's language (English fallback).

    ``ack_link`` is the signed one-tap acknowledgement link, ``map_cid`` the Content-ID of an
    inline map image (e-mail only); ``with_html=False`` skips the HTML form (channels that do
    not send it). ``created_at`` is the notification's creation time; the
    output depends only on the arguments, so retries re-send identical bytes.
    """
    t = _Texts(str(payload.get("language") or "en"))
    alerts = sorted(
        (a for a in payload.get("alerts") or [] if isinstance(a, Mapping)),
        key=lambda a: (_severity_rank(a.get("severity")), str(a.get("pcode") or "")),
    )
    kind = str(payload.get("kind") or "alert")
    group = payload.get("group") or {}
    subject = _subject(payload, alerts, t)
    intro = t("intro." + kind) if f"intro.{kind}" in _intro_keys() else t("intro.alert")
    created = created_at.strftime("%Y-%m-%d %H:%M UTC")

    fields = [_alert_fields(alert, t, base_url) for alert in alerts]  # shared by text and html
    text_lines = [subject, "", intro, ""]
    for number, (alert, rows) in enumerate(zip(alerts, fields, strict=True), start=1):
        severity = t.maybe("severity", str(alert.get("severity") or "info").lower())
        text_lines.append(f"{number}. [{severity}] {_what(alert, t)}: {_place(alert)}")
        for label, value in rows:
            text_lines.append(f"   {label}: {value}")
        text_lines.append("")
    if ack_link:
        text_lines += [f"{t('label.ack')}: {ack_link}", ""]
    text_lines += [t("footer"), f"riskwatch · {created}"]
    text = "\n".join(text_lines) + "\n"

    direction = "rtl" if t.language in RIGHT_TO_LEFT else "ltr"
    message_html = ""
    if with_html:
        message_html = _html(
            alerts,
            fields,
            group,
            t,
            subject=subject,
            intro=intro,
            created=created,
            direction=direction,
            ack_link=ack_link,
            map_cid=map_cid,
        )
    return RenderedMessage(
        language=t.language,
        subject=subject,
        text=text,
        html=message_html,
        short=_short(payload, alerts, t, ack_link),
        direction=direction,
    )


@functools.cache
def _intro_keys() -> frozenset[str]:
    from riskwatch.messages.locales import EN

    return frozenset(key for key in EN if key.startswith("intro."))
