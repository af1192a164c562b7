"""An alert as the payload contract and the CLI show it: what, where, since, how sure, why.

The explanation stored on the alert holds the facts of the latest evaluation (see
:func:`riskwatch.alerts.conditions.area_facts`) plus the episode and its start. The payload item
is those facts restricted to the contract's keys (CONTRACTS via the common brief), with the
alert's identity, state and the link to the evidence: never personal data, never coordinates.
"""

from __future__ import annotations

from typing import Any

from riskwatch.config import Settings
from riskwatch.db.models import Alert
from riskwatch.timeutil import iso_utc

#: The keys of one alert in a notification payload, in order.
PAYLOAD_ALERT_KEYS: tuple[str, ...] = (
    "alert_id",
    "rule",
    "severity",
    "state",
    "pcode",
    "name",
    "admin_level",
    "admin1_pcode",
    "admin1_name",
    "country_iso3",
    "country_name",
    "since",
    "period",
    "risk",
    "risk_class",
    "previous_risk_class",
    "risk_change",
    "reliability",
    "hotspot_class",
    "temporal_class",
    "surge",
    "surge_size",
    "top_drivers",
    "data_as_of",
    "freshness_days",
    "stale_sources",
    "area_url",
)


def area_url(settings: Settings, pcode: str) -> str:
    """The link to the area page (the evidence)."""
    return str(settings.base_url).rstrip("/") + "/area/" + pcode


def episode(alert: Alert) -> int:
    """Which firing episode the alert is in (1 for its first)."""
    return int((alert.explanation or {}).get("episode") or 1)


def since(alert: Alert) -> str:
    """When the current firing episode started (ISO UTC)."""
    return str((alert.explanation or {}).get("since") or iso_utc(alert.first_seen))


def payload_item(alert: Alert, settings: Settings) -> dict[str, Any]:
    """One alert of a notification payload (exactly the contract's keys)."""
    facts = dict(alert.explanation or {})
    item: dict[str, Any] = {key: facts.get(key) for key in PAYLOAD_ALERT_KEYS}
    item.update(
        {
            "alert_id": alert.id,
            "rule": alert.rule,
            "severity": alert.severity,
            "state": alert.state,
            "pcode": alert.area_pcode,
            "country_iso3": facts.get("country_iso3") or alert.country_iso3,
            "since": since(alert),
            "surge": bool(facts.get("surge")),
            "top_drivers": list(facts.get("top_drivers") or []),
            "stale_sources": list(facts.get("stale_sources") or []),
            "area_url": area_url(settings, alert.area_pcode),
        }
    )
    return item


def group_of(alert: Alert) -> dict[str, Any]:
    """The payload's group block of an alert (country/admin1)."""
    facts = alert.explanation or {}
    return {
        "key": alert.group_key,
        "country_iso3": alert.country_iso3,
        "country_name": facts.get("country_name") or alert.country_iso3,
        "admin1_pcode": facts.get("admin1_pcode"),
        "admin1_name": facts.get("admin1_name"),
    }


def summary_lines(alert: Alert) -> list[str]:
    """A few plain lines for the CLI: what, where, since, how sure, why, what changed."""
    facts = alert.explanation or {}
    where = f"{facts.get('name') or alert.area_pcode} ({alert.area_pcode})"
    if facts.get("admin1_name") and facts.get("admin1_pcode") != alert.area_pcode:
        where += f", {facts['admin1_name']}"
    where += f", {facts.get('country_name') or alert.country_iso3}"
    lines = [
        f"What:   {facts.get('summary') or alert.rule}",
        f"Where:  {where}",
        f"Since:  {since(alert)} (episode {episode(alert)})",
    ]
    if facts.get("risk") is not None:
        change = facts.get("risk_change")
        change_text = f", {change:+.2f} since the previous round" if change is not None else ""
        lines.append(
            f"Risk:   {facts['risk']}/10, {facts.get('risk_class')} (previous "
            f"{facts.get('previous_risk_class') or 'none'}){change_text}"
        )
    if facts.get("reliability") is not None:
        lines.append(f"How sure: reliability {facts['reliability']:.2f}")
    if facts.get("hotspot_class"):
        lines.append(f"Hotspot: {facts['hotspot_class']}, {facts.get('temporal_class')}")
    if facts.get("surge"):
        size = facts.get("surge_size")
        lines.append("Surge:  displacement surge" + (f" of {size:,.0f} IDPs" if size else ""))
    drivers = facts.get("top_drivers") or []
    if drivers:
        lines.append(
            "Drivers: "
            + "; ".join(
                f"{d.get('label') or d.get('indicator')} ({d.get('contribution')})" for d in drivers
            )
        )
    if facts.get("data_as_of"):
        lines.append(
            f"Data:   as of {facts['data_as_of']} ({facts.get('freshness_days')} days "
            "old)"
            + (
                f"; stale sources: {', '.join(facts['stale_sources'])}"
                if facts.get("stale_sources")
                else ""
            )
        )
    elif facts.get("stale_sources"):
        lines.append(f"Data:   stale sources: {', '.join(facts['stale_sources'])}")
    return lines
