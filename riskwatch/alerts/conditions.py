"""From the latest score run to *conditions*: per rule and area, should an alert open or hold.

The evaluation reads the latest succeeded score run at each country's latest period (countries
are scored at their own DTM dates) and the period before it in the same run. A condition says:

- ``opens``: the rule's trigger is met now (e.g. the class *rose* into high);
- ``holds``: a firing alert stays firing (e.g. the class is still high or above), so an alert
  does not resolve just because the rise is a round old;
- ``reopen_ok``: after it resolved, the alert may fire again (the risk rule asks for the class
  threshold plus a margin: hysteresis).

CONTRACTS.md "Alerts on a first evaluation": with no earlier evaluation (or no earlier class),
an area already at high or above counts as rising; a hotspot seen for the first time (never hot
at an earlier period of the run) is new.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import select as sql_select
from sqlmodel import Session, col, select

from riskwatch.catalog import RISK_CLASSES
from riskwatch.db.models import Area, AreaScore, Hotspot, IndicatorProfile, ScoreRun
from riskwatch.hotspot_stage import RISK_VARIABLE, SURGE_VARIABLE
from riskwatch.hotspots import HOT_CLASSES
from riskwatch.privacy import is_sensitive

from .routing import AreaIndex, Routing
from .rules import AlertRules, HotspotRule, RiskRule, StaleRule, SurgeRule
from .staleness import stale_area_pcodes, stale_source_countries, stale_sources

#: Lower bounds of low, medium, high, very_high when a run's profile does not say.
DEFAULT_CLASS_THRESHOLDS = (2.0, 3.5, 5.0, 6.5)


@dataclass
class Condition:
    """One rule met (or still met) at one area, with the facts that explain it."""

    rule_id: str
    pcode: str
    severity: str
    value: float | None
    opens: bool
    holds: bool
    reopen_ok: bool
    facts: dict[str, Any]

    @property
    def fingerprint(self) -> str:
        return f"{self.rule_id}:{self.pcode}"


@dataclass
class RunView:
    """What the rules read from one score run: latest and previous scores, risk hotspots."""

    run: ScoreRun | None
    latest: dict[str, AreaScore] = field(default_factory=dict)
    previous: dict[str, AreaScore] = field(default_factory=dict)
    hotspots: dict[str, Hotspot] = field(default_factory=dict)
    hot_before: set[str] = field(default_factory=set)
    class_thresholds: tuple[float, ...] = DEFAULT_CLASS_THRESHOLDS
    labels: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, run: ScoreRun | None) -> RunView:
        if run is None:
            return cls(None)
        periods: dict[str, list[date]] = defaultdict(list)
        for country, period in session.execute(
            sql_select(col(Area.country_iso3), col(AreaScore.period))
            .distinct()
            .join(Area, col(Area.pcode) == col(AreaScore.area_pcode))
            .where(col(AreaScore.run_id) == run.id)
        ).all():
            periods[str(country)].append(period)
        latest_of = {c: max(ps) for c, ps in periods.items()}
        previous_of = {c: sorted(ps)[-2] for c, ps in periods.items() if len(ps) > 1}
        wanted = sorted(set(latest_of.values()) | set(previous_of.values()))
        view = cls(run)
        country_of = dict(
            session.execute(sql_select(col(Area.pcode), col(Area.country_iso3))).all()
        )
        for score in session.exec(
            select(AreaScore).where(AreaScore.run_id == run.id, col(AreaScore.period).in_(wanted))
        ).all():
            country = country_of.get(score.area_pcode)
            if score.period == latest_of.get(country):
                view.latest[score.area_pcode] = score
            elif score.period == previous_of.get(country):
                view.previous[score.area_pcode] = score
        for hotspot in session.exec(
            select(Hotspot).where(
                Hotspot.run_id == run.id,
                Hotspot.variable == RISK_VARIABLE,
                col(Hotspot.period).in_(sorted(set(latest_of.values()))),
            )
        ).all():
            if hotspot.period == latest_of.get(country_of.get(hotspot.area_pcode)):
                view.hotspots[hotspot.area_pcode] = hotspot
        for pcode, period in session.execute(
            sql_select(col(Hotspot.area_pcode), col(Hotspot.period)).where(
                col(Hotspot.run_id) == run.id,
                col(Hotspot.variable) == RISK_VARIABLE,
                col(Hotspot.hotspot_class).in_(list(HOT_CLASSES)),
            )
        ).all():
            if period < latest_of.get(country_of.get(pcode), period):
                view.hot_before.add(str(pcode))
        if run.profile_id is not None:
            profile = session.get(IndicatorProfile, run.profile_id)
            content = (profile.content or {}) if profile is not None else {}
            thresholds = ((content.get("profile") or {}).get("classes") or {}).get("thresholds")
            if isinstance(thresholds, list) and len(thresholds) == 4:
                view.class_thresholds = tuple(float(t) for t in thresholds)
            for indicator in content.get("indicators") or []:
                if isinstance(indicator, dict) and indicator.get("id"):
                    view.labels[str(indicator["id"])] = str(
                        indicator.get("name") or indicator["id"]
                    )
        return view


def class_rank(risk_class: str | None) -> int | None:
    """Rank of a risk class (None for insufficient_data or no class)."""
    return RISK_CLASSES.index(risk_class) if risk_class in RISK_CLASSES else None


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)


def top_drivers(score: AreaScore | None, labels: dict[str, str]) -> list[dict[str, Any]]:
    """Up to five drivers of a score, largest first, with their indicator names."""
    text = ((score.drivers or {}).get("top_drivers") if score is not None else "") or ""
    drivers = []
    for pair in str(text).split(";"):
        indicator, _, contribution = pair.partition(":")
        if not indicator:
            continue
        try:
            value: float | None = float(contribution)
        except ValueError:
            value = None
        drivers.append(
            {
                "indicator": indicator,
                "label": labels.get(indicator, indicator),
                "contribution": value,
            }
        )
    return drivers[:5]


def shown_count(variable: str, value: float | None, threshold: int) -> float | None:
    """A count as it may be shown: small counts of sensitive variables are blanked."""
    if value is None:
        return None
    if is_sensitive(variable) and 0 < value < threshold:
        return None
    return float(value)


def area_facts(
    pcode: str,
    view: RunView,
    areas: AreaIndex,
    now: datetime,
    stale_by_country: dict[str, list[str]],
    threshold: int,
) -> dict[str, Any]:
    """The explanation facts of an area (the payload's alert fields, rule-independent)."""
    info = areas.get(pcode)
    country = info.country_iso3 if info is not None else pcode[:3]
    admin1 = areas.admin1_of(pcode)
    score = view.latest.get(pcode)
    previous = view.previous.get(pcode)
    hotspot = view.hotspots.get(pcode)
    risk_change = (
        round(score.risk - previous.risk, 2)
        if score is not None
        and previous is not None
        and score.risk is not None
        and previous.risk is not None
        else None
    )
    period = score.period if score is not None else None
    surge = bool(hotspot.surge) if hotspot is not None else False
    return {
        "pcode": pcode,
        "name": areas.name(pcode),
        "admin_level": info.admin_level if info is not None else None,
        "admin1_pcode": admin1,
        "admin1_name": areas.name(admin1),
        "country_iso3": country,
        "country_name": areas.name(country) or country,
        "period": period.isoformat() if period is not None else None,
        "risk": _round(score.risk) if score is not None else None,
        "risk_class": score.risk_class if score is not None else None,
        "previous_risk_class": previous.risk_class if previous is not None else None,
        "risk_change": risk_change,
        "reliability": _round(score.reliability) if score is not None else None,
        "hotspot_class": hotspot.hotspot_class if hotspot is not None else None,
        "temporal_class": hotspot.temporal_class if hotspot is not None else None,
        "surge": surge,
        # Displacement figures are public counts; privacy still decides what may be shown.
        "surge_size": (
            shown_count(SURGE_VARIABLE, hotspot.surge_size, threshold)
            if hotspot is not None and surge
            else None
        ),
        "top_drivers": top_drivers(score, view.labels),
        "data_as_of": period.isoformat() if period is not None else None,
        "freshness_days": (now.date() - period).days if period is not None else None,
        "stale_sources": list(stale_by_country.get(country, [])),
    }


def evaluate_conditions(
    session: Session,
    rules: AlertRules,
    view: RunView,
    areas: AreaIndex,
    routing: Routing,
    now: datetime,
    *,
    first_evaluation: bool,
    privacy_threshold: int,
) -> dict[str, Condition]:
    """Every condition met now, by fingerprint (an alert without one is clear)."""
    stale = stale_sources(session, now)
    stale_by_country = stale_source_countries(session, sorted(stale))
    facts_cache: dict[str, dict[str, Any]] = {}

    def facts(pcode: str, summary: str) -> dict[str, Any]:
        if pcode not in facts_cache:
            facts_cache[pcode] = area_facts(
                pcode, view, areas, now, stale_by_country, privacy_threshold
            )
        return {**facts_cache[pcode], "summary": summary}

    found: dict[str, Condition] = {}
    for rule_id, rule in rules.enabled().items():
        if isinstance(rule, HotspotRule):
            conditions = _hotspot(rule_id, rule, view, facts)
        elif isinstance(rule, RiskRule):
            conditions = _risk(rule_id, rule, view, first_evaluation, facts)
        elif isinstance(rule, SurgeRule):
            conditions = _surge(rule_id, rule, view, facts)
        elif isinstance(rule, StaleRule):
            conditions = _stale(rule_id, rule, session, now, stale, areas, routing, facts)
        else:  # pragma: no cover - the rules model has no other kind
            continue
        for condition in conditions:
            found[condition.fingerprint] = condition
    return found


def _hotspot(
    rule_id: str,
    rule: HotspotRule,
    view: RunView,
    facts: Any,
) -> list[Condition]:
    hot = rule.hot_classes
    out = []
    for pcode, hotspot in view.hotspots.items():
        if hotspot.hotspot_class not in hot:
            continue
        # A hotspot seen for the first time (never hot at an earlier period of the run) is new,
        # whatever its temporal class. Not every hotspot of a first evaluation: an old,
        # sporadic hotspot is not news, and a first message must not be a wall of them.
        seen_first = pcode not in view.hot_before
        opens = hotspot.temporal_class in rule.temporal_classes or seen_first
        label = hotspot.temporal_class if hotspot.temporal_class in rule.temporal_classes else "new"
        summary = (
            f"{label} hotspot of trafficking risk ({hotspot.hotspot_class}, "
            f"{hotspot.temporal_class})"
        )
        out.append(
            Condition(
                rule_id,
                pcode,
                rule.severity,
                _round(hotspot.gi_z, 3),
                opens,
                True,
                True,
                facts(pcode, summary),
            )
        )
    return out


def _risk(
    rule_id: str,
    rule: RiskRule,
    view: RunView,
    first: bool,
    facts: Any,
) -> list[Condition]:
    lowest = rule.lowest_rank
    bound = view.class_thresholds[lowest - 1] if lowest >= 1 else 0.0
    out = []
    for pcode, score in view.latest.items():
        rank = class_rank(score.risk_class)
        if rank is None or rank < lowest:
            continue
        previous = view.previous.get(pcode)
        before = class_rank(previous.risk_class) if previous is not None else None
        opens = score.risk_class in rule.into_classes and (first or before is None or rank > before)
        reopen_ok = score.risk is not None and score.risk >= bound + rule.refire_margin
        severity = rule.severity_by_class.get(score.risk_class, rule.severity)
        was = previous.risk_class if previous is not None else "no earlier class"
        # On a first evaluation a high class fires whatever came before (CONTRACTS), so the
        # summary says why rather than suggesting that the class rose.
        why = f"first evaluation, previous round {was}" if first else f"was {was}"
        summary = (
            f"risk class {score.risk_class} ({why}), risk {score.risk:.1f}/10"
            if score.risk is not None
            else f"risk class {score.risk_class} ({why})"
        )
        out.append(
            Condition(
                rule_id,
                pcode,
                severity,
                _round(score.risk),
                opens,
                True,
                reopen_ok,
                facts(pcode, summary),
            )
        )
    return out


def _surge(rule_id: str, rule: SurgeRule, view: RunView, facts: Any) -> list[Condition]:
    out = []
    for pcode, hotspot in view.hotspots.items():
        score = view.latest.get(pcode)
        if not hotspot.surge or score is None or score.vulnerability is None:
            continue
        if score.vulnerability < rule.min_vulnerability:
            continue
        summary = (
            f"displacement surge where vulnerability is {score.vulnerability:.1f}/10 "
            f"(threshold {rule.min_vulnerability:g})"
        )
        out.append(
            Condition(
                rule_id,
                pcode,
                rule.severity,
                _round(hotspot.surge_size, 0),
                True,
                True,
                True,
                facts(pcode, summary),
            )
        )
    return out


def _stale(
    rule_id: str,
    rule: StaleRule,
    session: Session,
    now: datetime,
    stale: dict[str, datetime | None],
    areas: AreaIndex,
    routing: Routing,
    facts: Any,
) -> list[Condition]:
    if not stale or not routing.deployed_on:
        return []
    stale_pcodes = stale_area_pcodes(session, now, sorted(stale))
    # A deployed area is stale when stale data lies in it, or it lies in an area of stale data.
    touched: set[str] = set()
    for pcode in stale_pcodes:
        touched.update(areas.chain(pcode) if pcode in areas.areas else (pcode,))
    out = []
    for pcode in sorted(routing.deployed_on):
        if pcode not in areas.areas:
            continue
        chain = set(areas.chain(pcode))
        if pcode not in touched and not (chain & stale_pcodes):
            continue
        item = facts(
            pcode, "data for this deployment area is older than its sources' expected cadence"
        )
        if not item["stale_sources"]:
            item["stale_sources"] = sorted(stale)
        out.append(Condition(rule_id, pcode, rule.severity, None, True, True, True, item))
    return out
