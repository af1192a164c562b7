"""The alert rules file (``alerts.toml``): rules, thresholds, severities and lifecycle timings.

Each ``[rules.ID]`` table is one rule; its ``kind`` (default: the id) says which condition it
checks, so a deployment may run, say, two risk rules with different classes. A bad file stops
the evaluation with a :class:`~riskwatch.config.ConfigError` naming the key (exit code 2).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from riskwatch.catalog import RISK_CLASSES
from riskwatch.config import ConfigError, Settings, read_toml
from riskwatch.hotspots import HOT_CLASSES

SEVERITIES: tuple[str, ...] = ("info", "warning", "critical")
Severity = Literal["info", "warning", "critical"]
RULE_KINDS: tuple[str, ...] = (
    "hotspot_new_or_intensifying",
    "risk_class_rising",
    "displacement_surge",
    "stale_data",
)


def severity_rank(severity: str) -> int:
    """Order of a severity (unknown values rank lowest)."""
    return SEVERITIES.index(severity) if severity in SEVERITIES else -1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Lifecycle(_Strict):
    group_wait_seconds: int = Field(30, ge=0, le=24 * 3600)
    repeat_interval_hours: float = Field(24.0, gt=0, le=24 * 365)
    cooldown_hours: float = Field(72.0, ge=0, le=24 * 365)
    resolve_after_evaluations: int = Field(2, ge=1, le=100)
    escalate_after_minutes: float = Field(240.0, gt=0, le=60 * 24 * 30)


class Digest(_Strict):
    enabled: bool = False


class Review(_Strict):
    countries: list[str] = Field(default_factory=list)

    @field_validator("countries")
    @classmethod
    def _iso3(cls, values: list[str]) -> list[str]:
        for value in values:
            if len(value) != 3 or not value.isalpha():
                raise ValueError(f'ISO3 country codes such as "HTI" (got {value!r})')
        return [value.upper() for value in values]


class _Rule(_Strict):
    enabled: bool = True
    severity: Severity = "warning"
    # Rules of one family inhibit each other across levels (default: the rule's own id).
    family: str | None = None


class HotspotRule(_Rule):
    kind: Literal["hotspot_new_or_intensifying"] = "hotspot_new_or_intensifying"
    temporal_classes: list[str] = Field(
        default_factory=lambda: ["new", "intensifying"], min_length=1
    )
    min_hotspot_class: Literal["hot_90", "hot_95", "hot_99"] = "hot_95"

    @property
    def hot_classes(self) -> set[str]:
        """The hotspot classes at least as strong as ``min_hotspot_class``."""
        order = ["hot_90", "hot_95", "hot_99"]
        return set(order[order.index(self.min_hotspot_class) :]) & set(HOT_CLASSES)


class RiskRule(_Rule):
    kind: Literal["risk_class_rising"] = "risk_class_rising"
    into_classes: list[str] = Field(default_factory=lambda: ["high", "very_high"], min_length=1)
    severity_by_class: dict[str, Severity] = Field(default_factory=dict)
    refire_margin: float = Field(0.5, ge=0.0, le=10.0)

    @field_validator("into_classes")
    @classmethod
    def _known_classes(cls, values: list[str]) -> list[str]:
        for value in values:
            if value not in RISK_CLASSES:
                raise ValueError(f"risk classes among {', '.join(RISK_CLASSES)} (got {value!r})")
        return values

    @property
    def lowest_rank(self) -> int:
        """Rank (in RISK_CLASSES) of the lowest class this rule alerts on."""
        return min(RISK_CLASSES.index(c) for c in self.into_classes)


class SurgeRule(_Rule):
    kind: Literal["displacement_surge"] = "displacement_surge"
    min_vulnerability: float = Field(5.0, ge=0.0, le=10.0)


class StaleRule(_Rule):
    kind: Literal["stale_data"] = "stale_data"
    severity: Severity = "info"


Rule = Annotated[HotspotRule | RiskRule | SurgeRule | StaleRule, Field(discriminator="kind")]


class AlertRules(_Strict):
    """The whole rules file, validated."""

    lifecycle: Lifecycle = Field(default_factory=Lifecycle)
    digest: Digest = Field(default_factory=Digest)
    review: Review = Field(default_factory=Review)
    rules: dict[str, Rule] = Field(default_factory=dict)
    source: str = ""  # the file it came from (for messages)

    def enabled(self) -> dict[str, Rule]:
        """The enabled rules by id."""
        return {rule_id: rule for rule_id, rule in self.rules.items() if rule.enabled}

    def family(self, rule_id: str) -> str:
        rule = self.rules.get(rule_id)
        return rule.family if rule is not None and rule.family else rule_id


def parse_rules(data: dict[str, Any], source: str = "alerts.toml") -> AlertRules:
    """Validate a parsed rules file; ConfigError with one line per bad key."""
    raw = dict(data)
    rules = {}
    for rule_id, table in dict(raw.get("rules") or {}).items():
        if not isinstance(table, dict):
            raise ConfigError(f"alert rules error: rules.{rule_id} in {source} must be a table")
        table = dict(table)
        table.setdefault("kind", rule_id)
        if table["kind"] not in RULE_KINDS:
            raise ConfigError(
                f"alert rules error: rules.{rule_id}.kind = {table['kind']!r} in {source} is not "
                f"a known rule kind; one of {', '.join(RULE_KINDS)} (the kind defaults to the "
                "rule id)"
            )
        rules[rule_id] = table
    raw["rules"] = rules
    try:
        parsed = AlertRules(**raw)
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            # Drop the discriminator tag pydantic inserts into the location.
            loc = [str(p) for p in error["loc"] if str(p) not in RULE_KINDS]
            key = ".".join(loc)
            lines.append(
                f"alert rules error: '{key}' = {error.get('input')!r} in {source}: {error['msg']}"
            )
        raise ConfigError("\n".join(lines)) from None
    parsed.source = source
    return parsed


def load_rules(settings: Settings, path: Path | None = None) -> AlertRules:
    """Read the rules file the settings name (or ``path``)."""
    rules_file = path or settings.alerts.resolved_rules_file
    return parse_rules(read_toml(rules_file), str(rules_file))
