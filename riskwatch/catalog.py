"""The indicator catalog: one TOML file per indicator plus profiles, loaded and checked.

A catalog folder (the ``indicators_dir`` setting) holds indicator files directly and profiles in
its ``profiles/`` subfolder. :func:`read_catalog` parses every file and returns what it could load
together with every problem found, each naming the file and the key; :func:`load_catalog` refuses
a catalog with any problem. A :class:`ScoringModel` is one profile resolved against the
indicators it includes: it is what scoring needs, and its canonical JSON content (and hash) is
what a score run stores as the profile version.

The transform vocabulary is closed (see :data:`TRANSFORMS`); so are dimensions, directions,
normalisations and missing-data policies. Inputs must be known variables: the standard names of
CONTRACTS.md, the variables the readers produce (DTM, HAPI, ACLED), or ones a configured mapping
declares (the ``extra_variables`` hook).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from riskwatch.errors import RiskwatchError

DIMENSIONS = ("exposure", "vulnerability", "lack_of_capacity")
DIRECTIONS = ("higher_is_riskier", "lower_is_riskier")
MISSING_POLICIES = ("unavailable", "zero_in_coverage")
RISK_CLASSES = ("very_low", "low", "medium", "high", "very_high")
INSUFFICIENT_DATA = "insufficient_data"
TRANSFORMS = (
    "value", "per_capita", "share", "change", "ratio_to_rolling_max", "sum_over_period",
    "log1p", "winsorise",
)  # fmt: skip
#: Steps that read a variable's series and start an indicator's transform.
SOURCE_STEPS = ("value", "sum_over_period", "change", "ratio_to_rolling_max")
#: Steps that divide by a second variable.
DENOMINATOR_STEPS = ("per_capita", "share")
NORMALISATIONS = ("min_max", "goalposts")
REFERENCE_SETS = ("level", "level_period", "country_level")

_ID = r"^[a-z][a-z0-9_]*$"
_M = TypeVar("_M", bound="BaseModel")


class CatalogError(RiskwatchError):
    """The catalog cannot be used; the message lists every problem (file, key, what is wrong)."""

    def __init__(self, problems: list[CatalogProblem]) -> None:
        self.problems = problems
        super().__init__(
            f"the indicator catalog has {len(problems)} problem(s):\n"
            + "\n".join(str(p) for p in problems)
        )


@dataclass(frozen=True)
class CatalogProblem:
    """One problem in one catalog file, at one key."""

    path: Path
    key: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.key or '(file)'}: {self.message}"


# --- variables -------------------------------------------------------------------------------


class VariableKind(StrEnum):
    """How a variable behaves across admin levels (used when filling the hierarchy)."""

    COUNT = "count"  # additive; a parent is the sum of all its children
    EVENT_COUNT = "event_count"  # additive; inside the coverage a child without a row counts 0
    SHARE = "share"  # intensive (0-1); finer areas may inherit a coarser value
    MEASURE = "measure"  # intensive (a distance...); finer areas may inherit a coarser value
    OTHER = "other"  # declared by a mapping: neither summed up nor inherited down


STANDARD_VARIABLES: dict[str, tuple[VariableKind, str]] = {
    "population": (VariableKind.COUNT, "residents of the area"),
    "idps": (VariableKind.COUNT, "internally displaced people present (DTM, HAPI)"),
    "idps_male": (VariableKind.COUNT, "male IDPs (DTM)"),
    "idps_female": (VariableKind.COUNT, "female IDPs (DTM)"),
    "idps_in_sites": (VariableKind.COUNT, "IDPs living in displacement sites"),
    "ipc_phase3plus_share": (VariableKind.SHARE, "share of people in IPC phase 3 or worse"),
    "children_share": (VariableKind.SHARE, "share of the population under 18"),
    "women_share": (VariableKind.SHARE, "share of the population who are women"),
    "female_headed_households_share": (VariableKind.SHARE, "share of female-headed households"),
    "site_overcrowding": (
        VariableKind.SHARE,
        "share of site residents below the Sphere minimum of 45 m2 per person",
    ),
    "ct_service_coverage": (
        VariableKind.SHARE, "share of sites or communities with a counter-trafficking service",
    ),
    "civil_documentation_share": (
        VariableKind.SHARE, "share of people holding civil documentation",
    ),
    "distance_to_border_km": (
        VariableKind.MEASURE, "distance to the nearest international border or transit route",
    ),
    "distance_to_services_km": (
        VariableKind.MEASURE, "distance to the nearest protection or CT service point",
    ),
    "conflict_events": (VariableKind.EVENT_COUNT, "political violence events per month (ACLED)"),
    "conflict_fatalities": (VariableKind.EVENT_COUNT, "fatalities of those events (ACLED)"),
    "abduction_events": (VariableKind.EVENT_COUNT, "abductions/forced disappearances (ACLED)"),
    "sexual_violence_events": (VariableKind.EVENT_COUNT, "sexual violence events (ACLED)"),
}
#: Families of variables the readers produce, by pattern.
VARIABLE_PATTERNS: tuple[tuple[re.Pattern[str], VariableKind, str], ...] = (
    (re.compile(r"^conflict_events_[a-z0-9_]+$"), VariableKind.EVENT_COUNT,
     "conflict events of one HAPI event type"),
    (re.compile(r"^conflict_fatalities_[a-z0-9_]+$"), VariableKind.EVENT_COUNT,
     "fatalities of one HAPI event type"),
    (re.compile(r"^ipc_phase[1-5]_share$"), VariableKind.SHARE,
     "share of people in one IPC phase"),
)


def variable_kind(name: str, extra_variables: Iterable[str] = ()) -> VariableKind | None:
    """The kind of a known variable, or None when the name is not known."""
    if name in STANDARD_VARIABLES:
        return STANDARD_VARIABLES[name][0]
    for pattern, kind, _ in VARIABLE_PATTERNS:
        if pattern.match(name):
            return kind
    if name in set(extra_variables):
        return VariableKind.OTHER
    return None


# --- file models -----------------------------------------------------------------------------


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _positive_number(value: Any) -> Any:
    # A TOML boolean would pass as 1.0; a weight of `true` is a typo, not a weight.
    if isinstance(value, bool):
        raise ValueError("a positive number, not a boolean")
    return value


class ValueStep(_Strict):
    """The variable's latest value at or before the period."""

    op: Literal["value"]
    variable: str
    max_age_days: int | None = Field(None, ge=1, le=36500)


class SumOverPeriodStep(_Strict):
    """The sum of the variable's values dated within the last ``days`` days."""

    op: Literal["sum_over_period"]
    variable: str
    days: int = Field(ge=1, le=3660)


class ChangeStep(_Strict):
    """Latest value minus the value ``rounds`` observations earlier (relative: divided by it)."""

    op: Literal["change"]
    variable: str
    rounds: int = Field(1, ge=1, le=60)
    relative: bool = True
    max_age_days: int | None = Field(None, ge=1, le=36500)


class RatioToRollingMaxStep(_Strict):
    """Latest value divided by the maximum of the last ``rounds`` observations (itself included)."""

    op: Literal["ratio_to_rolling_max"]
    variable: str
    rounds: int = Field(ge=2, le=120)
    max_age_days: int | None = Field(None, ge=1, le=36500)


class PerCapitaStep(_Strict):
    """Divide by the denominator (usually population) and multiply by ``per``."""

    op: Literal["per_capita"]
    denominator: str
    per: float = Field(100_000.0, gt=0, allow_inf_nan=False)
    max_age_days: int | None = Field(None, ge=1, le=36500)


class ShareStep(_Strict):
    """Divide by the denominator (a share of it, 0-1 when the numerator is part of it)."""

    op: Literal["share"]
    denominator: str
    max_age_days: int | None = Field(None, ge=1, le=36500)


class Log1pStep(_Strict):
    """log(1 + x): tames heavy-tailed counts and rates."""

    op: Literal["log1p"]


class WinsoriseStep(_Strict):
    """Clip to the ``lower``/``upper`` quantiles of the indicator's reference set."""

    op: Literal["winsorise"]
    lower: float = Field(0.0, ge=0.0, lt=0.5)
    upper: float = Field(0.99, gt=0.5, le=1.0)


Step = Annotated[
    ValueStep | SumOverPeriodStep | ChangeStep | RatioToRollingMaxStep | PerCapitaStep
    | ShareStep | Log1pStep | WinsoriseStep,
    Field(discriminator="op"),
]


class MinMax(_Strict):
    """Min-max over a reference set: the lowest value maps to 0, the highest to 10."""

    method: Literal["min_max"]
    reference: Literal["level", "level_period", "country_level"] = "level"


class Goalposts(_Strict):
    """Fixed goalposts: ``lower`` maps to 0, ``upper`` to 10, values beyond are clipped."""

    method: Literal["goalposts"]
    lower: float = Field(allow_inf_nan=False)
    upper: float = Field(allow_inf_nan=False)

    @model_validator(mode="after")
    def _ordered(self) -> Goalposts:
        if not self.lower < self.upper:
            raise ValueError(f"lower ({self.lower:g}) must be below upper ({self.upper:g})")
        return self


Normalisation = Annotated[MinMax | Goalposts, Field(discriminator="method")]


class Rationale(_Strict):
    """Why the factor raises trafficking risk, and where that is documented."""

    text: str = Field(min_length=20)
    references: list[str] = Field(min_length=1)


class Indicator(_Strict):
    """One indicator file."""

    id: str = Field(pattern=_ID, max_length=64)
    name: str = Field(min_length=1)
    description: str = Field(min_length=1)
    rationale: Rationale
    inputs: list[str] = Field(min_length=1)
    transform: list[Step] = Field(min_length=1)
    normalisation: Normalisation
    direction: Literal["higher_is_riskier", "lower_is_riskier"]
    dimension: str
    weight: float = Field(gt=0, allow_inf_nan=False)
    min_denominator: float = Field(0.0, ge=0, allow_inf_nan=False)
    missing: Literal["unavailable", "zero_in_coverage"] = "unavailable"
    max_age_days: int | None = Field(None, ge=1, le=36500)

    _check_weight = field_validator("weight", mode="before")(_positive_number)

    @field_validator("dimension")
    @classmethod
    def _known_dimension(cls, value: str) -> str:
        if value not in DIMENSIONS:
            raise ValueError(f"unknown dimension {value!r}; known: {', '.join(DIMENSIONS)}")
        return value

    @property
    def source(self) -> ValueStep | SumOverPeriodStep | ChangeStep | RatioToRollingMaxStep:
        """The first step: the one that reads the indicator's main variable."""
        return self.transform[0]  # type: ignore[return-value]

    @property
    def denominator_step(self) -> PerCapitaStep | ShareStep | None:
        for step in self.transform:
            if isinstance(step, PerCapitaStep | ShareStep):
                return step
        return None


class DimensionSpec(_Strict):
    """A dimension of a profile and its weight in the composite."""

    id: str
    name: str = Field(min_length=1)
    weight: float = Field(1.0, gt=0, allow_inf_nan=False)

    _check_weight = field_validator("weight", mode="before")(_positive_number)

    @field_validator("id")
    @classmethod
    def _known_dimension(cls, value: str) -> str:
        if value not in DIMENSIONS:
            raise ValueError(f"unknown dimension {value!r}; known: {', '.join(DIMENSIONS)}")
        return value


class Classes(_Strict):
    """Lower bounds of the classes low, medium, high and very_high (very_low starts at 0)."""

    thresholds: list[float] = Field(min_length=4, max_length=4)

    @field_validator("thresholds")
    @classmethod
    def _increasing(cls, values: list[float]) -> list[float]:
        if any(not 0 < v < 10 for v in values):
            raise ValueError("every threshold must lie strictly between 0 and 10")
        if any(b <= a for a, b in zip(values, values[1:], strict=False)):
            raise ValueError("thresholds must increase strictly")
        return values


class Profile(_Strict):
    """A profile file: dimensions, weights, aggregation and class thresholds."""

    name: str = Field(pattern=_ID, max_length=64)
    title: str = Field(min_length=1)
    description: str = Field(min_length=1)
    aggregation: Literal["geometric", "arithmetic"]
    geometric_floor: float = Field(0.5, gt=0, le=10, allow_inf_nan=False)
    dimensions: list[DimensionSpec] = Field(min_length=1)
    indicators: list[str] | None = None
    weights: dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]] = Field(
        default_factory=dict
    )
    classes: Classes

    @field_validator("weights", mode="before")
    @classmethod
    def _no_boolean_weights(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            for key, weight in value.items():
                if isinstance(weight, bool):
                    raise ValueError(f"weight of {key!r} must be a positive number")
        return value


# --- the resolved model ----------------------------------------------------------------------


@dataclass(frozen=True)
class ScoringModel:
    """A profile resolved against its indicators: everything one score run needs."""

    profile: Profile
    indicators: tuple[Indicator, ...]  # sorted by id

    @property
    def name(self) -> str:
        return self.profile.name

    def weight(self, indicator_id: str) -> float:
        """The indicator's weight within its dimension (the profile may override the file)."""
        if indicator_id in self.profile.weights:
            return self.profile.weights[indicator_id]
        return next(i.weight for i in self.indicators if i.id == indicator_id)

    @property
    def dimension_ids(self) -> tuple[str, ...]:
        return tuple(d.id for d in self.profile.dimensions)

    def global_weights(self) -> dict[str, float]:
        """Each indicator's share of the whole profile (sums to 1).

        dimension weight share x the indicator's share of its dimension's weight: the measure of
        "how much of the profile" an indicator is, used for reliability and insufficient data.
        """
        dimension_total = sum(d.weight for d in self.profile.dimensions)
        shares: dict[str, float] = {}
        for spec in self.profile.dimensions:
            members = [i for i in self.indicators if i.dimension == spec.id]
            within = sum(self.weight(i.id) for i in members)
            for indicator in members:
                shares[indicator.id] = (
                    spec.weight / dimension_total * self.weight(indicator.id) / within
                )
        return shares

    @property
    def variables(self) -> tuple[str, ...]:
        """Every input variable of the included indicators, sorted."""
        return tuple(sorted({v for i in self.indicators for v in i.inputs}))

    def content(self) -> dict[str, Any]:
        """The canonical content stored with each profile version (JSON-ready)."""
        return {
            "profile": self.profile.model_dump(mode="json"),
            "indicators": [i.model_dump(mode="json") for i in self.indicators],
        }

    def content_hash(self) -> str:
        """SHA-256 of the canonical JSON content: the identity of a profile version."""
        return content_hash(self.content())

    @classmethod
    def from_content(cls, content: Mapping[str, Any]) -> ScoringModel:
        """Rebuild a model from stored content (a published profile version)."""
        profile = Profile.model_validate(content["profile"])
        indicators = tuple(
            sorted((Indicator.model_validate(i) for i in content["indicators"]),
                   key=lambda i: i.id)
        )
        return cls(profile=profile, indicators=indicators)


def content_hash(content: Mapping[str, Any]) -> str:
    """SHA-256 of JSON with sorted keys and no whitespace (stable across runs and machines)."""
    text = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass
class Catalog:
    """The indicators and profiles of one catalog folder."""

    directory: Path
    indicators: dict[str, Indicator] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    indicator_paths: dict[str, Path] = field(default_factory=dict)
    profile_paths: dict[str, Path] = field(default_factory=dict)

    def model(self, profile_name: str) -> ScoringModel:
        """The scoring model of one profile; RiskwatchError when there is no such profile."""
        profile = self.profiles.get(profile_name)
        if profile is None:
            known = ", ".join(sorted(self.profiles)) or "none"
            raise RiskwatchError(
                f"unknown profile {profile_name!r} in {self.directory / 'profiles'}; "
                f"profiles: {known}"
            )
        ids = profile.indicators if profile.indicators is not None else sorted(self.indicators)
        return ScoringModel(
            profile=profile,
            indicators=tuple(sorted((self.indicators[i] for i in ids), key=lambda i: i.id)),
        )


# --- reading and checking --------------------------------------------------------------------


def read_catalog(
    directory: Path, *, extra_variables: Iterable[str] = ()
) -> tuple[Catalog, list[CatalogProblem]]:
    """Parse every file of a catalog folder; return what loaded and every problem found."""
    directory = Path(directory)
    catalog = Catalog(directory=directory)
    problems: list[CatalogProblem] = []
    if not directory.is_dir():
        problems.append(CatalogProblem(directory, "", "catalog folder not found"))
        return catalog, problems
    extra = frozenset(extra_variables)

    indicator_files = sorted(directory.glob("*.toml"))
    if not indicator_files:
        problems.append(CatalogProblem(directory, "", "no indicator files (*.toml) in the folder"))
    for path in indicator_files:
        indicator = _parse(path, Indicator, problems)
        if indicator is None:
            continue
        if indicator.id in catalog.indicators:
            problems.append(CatalogProblem(
                path, "id",
                f"duplicate id {indicator.id!r}, also in {catalog.indicator_paths[indicator.id]}",
            ))
            continue
        problems.extend(_indicator_problems(path, indicator, extra))
        catalog.indicators[indicator.id] = indicator
        catalog.indicator_paths[indicator.id] = path

    profile_files = sorted((directory / "profiles").glob("*.toml"))
    if not profile_files:
        problems.append(
            CatalogProblem(directory / "profiles", "", "no profile files (*.toml) in the folder")
        )
    for path in profile_files:
        profile = _parse(path, Profile, problems)
        if profile is None:
            continue
        if profile.name in catalog.profiles:
            problems.append(CatalogProblem(
                path, "name",
                f"duplicate profile name {profile.name!r}, also in "
                f"{catalog.profile_paths[profile.name]}",
            ))
            continue
        problems.extend(_profile_problems(path, profile, catalog.indicators))
        catalog.profiles[profile.name] = profile
        catalog.profile_paths[profile.name] = path
    return catalog, problems


def check_catalog(directory: Path, *, extra_variables: Iterable[str] = ()) -> list[CatalogProblem]:
    """Every problem of a catalog folder (empty when the catalog is usable)."""
    return read_catalog(directory, extra_variables=extra_variables)[1]


def load_catalog(directory: Path, *, extra_variables: Iterable[str] = ()) -> Catalog:
    """The catalog of a folder; CatalogError listing every problem if there is any."""
    catalog, problems = read_catalog(directory, extra_variables=extra_variables)
    if problems:
        raise CatalogError(problems)
    return catalog


def _parse(path: Path, model: type[_M], problems: list[CatalogProblem]) -> _M | None:
    try:
        with path.open("rb") as handle:
            data = tomllib.load(handle)
    except tomllib.TOMLDecodeError as exc:
        problems.append(CatalogProblem(path, "", f"not valid TOML: {exc}"))
        return None
    except OSError as exc:
        problems.append(CatalogProblem(path, "", f"cannot read the file: {exc.strerror}"))
        return None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        for error in exc.errors():
            key, message = _describe_validation_error(error)
            problems.append(CatalogProblem(path, key, message))
        return None


def _describe_validation_error(error: Mapping[str, Any]) -> tuple[str, str]:
    """A pydantic error as (dotted key, message); union tags are left out of the key."""
    parts: list[str] = []
    for part in error["loc"]:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        elif part in TRANSFORMS or part in NORMALISATIONS:
            continue  # the discriminated-union branch, not a key of the file
        else:
            parts.append(("." if parts else "") + str(part))
    key = "".join(parts)
    kind = error["type"]
    message = str(error["msg"]).removeprefix("Value error, ")
    if kind == "union_tag_invalid":
        context = error.get("ctx", {})
        tag = context.get("tag")
        if context.get("discriminator") == "'op'":
            key, message = f"{key}.op", (
                f"unknown transform {tag!r}; known transforms: {', '.join(TRANSFORMS)}"
            )
        else:
            key, message = f"{key}.method", (
                f"unknown normalisation {tag!r}; known: {', '.join(NORMALISATIONS)}"
            )
    elif kind == "union_tag_not_found":
        field_name = "op" if key.startswith("transform") else "method"
        key, message = f"{key}.{field_name}", f"missing '{field_name}'"
    elif kind == "extra_forbidden":
        message = "unknown key"
    elif kind == "missing":
        message = "required key is missing"
    return key, message


def _indicator_problems(
    path: Path, indicator: Indicator, extra_variables: frozenset[str]
) -> list[CatalogProblem]:
    """Checks across the fields of one indicator: inputs, step order, policy."""
    problems: list[CatalogProblem] = []

    def add(key: str, message: str) -> None:
        problems.append(CatalogProblem(path, key, message))

    if path.stem != indicator.id:
        add("id", f"the id {indicator.id!r} differs from the file name {path.name!r} "
                  f"(name the file {indicator.id}.toml)")
    for index, name in enumerate(indicator.inputs):
        if variable_kind(name, extra_variables) is None:
            add(f"inputs[{index}]",
                f"unknown variable {name!r}: neither a standard variable nor one a configured "
                "mapping declares (scoring.extra_variables)")
    if len(set(indicator.inputs)) != len(indicator.inputs):
        add("inputs", "an input is listed twice")

    used: set[str] = set()
    for index, step in enumerate(indicator.transform):
        is_source = step.op in SOURCE_STEPS
        if index == 0 and not is_source:
            add("transform[0].op",
                f"a transform starts with a step that reads a variable "
                f"({', '.join(SOURCE_STEPS)}), not {step.op!r}")
        if index > 0 and is_source:
            add(f"transform[{index}].op",
                f"{step.op!r} reads a variable and can only be the first step")
        for attribute in ("variable", "denominator"):
            referenced: str | None = getattr(step, attribute, None)
            if referenced is None:
                continue
            used.add(referenced)
            if referenced not in indicator.inputs:
                add(f"transform[{index}].{attribute}",
                    f"{referenced!r} is not listed in inputs ({', '.join(indicator.inputs)})")
    for index, name in enumerate(indicator.inputs):
        if name not in used:
            add(f"inputs[{index}]", f"input {name!r} is not used by any transform step")
    denominators = [s for s in indicator.transform if s.op in DENOMINATOR_STEPS]
    if len(denominators) > 1:
        add("transform", "at most one per_capita or share step")
    if indicator.missing == "zero_in_coverage":
        source = indicator.transform[0]
        kind = variable_kind(getattr(source, "variable", ""), extra_variables)
        if source.op not in ("value", "sum_over_period"):
            add("missing", "zero_in_coverage needs a first step 'value' or 'sum_over_period' "
                           "(a change or ratio of filled zeros means nothing)")
        elif kind not in (VariableKind.EVENT_COUNT, VariableKind.OTHER, None):
            add("missing", f"zero_in_coverage is for event counts; {source.variable!r} is a "  # type: ignore[union-attr]
                           f"{kind.value}: a missing value of it is not a zero")
    return problems


def _profile_problems(
    path: Path, profile: Profile, indicators: Mapping[str, Indicator]
) -> list[CatalogProblem]:
    """Checks of a profile against the indicators of the catalog."""
    problems: list[CatalogProblem] = []

    def add(key: str, message: str) -> None:
        problems.append(CatalogProblem(path, key, message))

    dimension_ids = [d.id for d in profile.dimensions]
    if len(set(dimension_ids)) != len(dimension_ids):
        add("dimensions", "a dimension is listed twice")
    included = profile.indicators if profile.indicators is not None else sorted(indicators)
    if profile.indicators is not None:
        if len(set(profile.indicators)) != len(profile.indicators):
            add("indicators", "an indicator is listed twice")
        for index, indicator_id in enumerate(profile.indicators):
            if indicator_id not in indicators:
                add(f"indicators[{index}]", f"unknown indicator {indicator_id!r}")
    for indicator_id in profile.weights:
        if indicator_id not in indicators:
            add(f"weights.{indicator_id}", f"weight for an unknown indicator {indicator_id!r}")
        elif indicator_id not in included:
            add(f"weights.{indicator_id}",
                f"weight for {indicator_id!r}, which the profile does not include")
    for indicator_id in included:
        indicator = indicators.get(indicator_id)
        if indicator is not None and indicator.dimension not in dimension_ids:
            add("dimensions",
                f"indicator {indicator_id!r} is in dimension {indicator.dimension!r}, which the "
                "profile does not list")
    for index, spec in enumerate(profile.dimensions):
        members = [i for i in included if i in indicators and indicators[i].dimension == spec.id]
        if not members:
            add(f"dimensions[{index}]", f"no included indicator is in dimension {spec.id!r}")
    if profile.aggregation == "geometric" and not math.isfinite(profile.geometric_floor):
        add("geometric_floor", "must be a number between 0 (excluded) and 10")
    return problems


def describe_transform(indicator: Indicator) -> str:
    """The transform as one line, e.g. ``sum_over_period(x, 92 d) > per_capita(population)``."""
    parts = []
    for step in indicator.transform:
        if isinstance(step, ValueStep):
            parts.append(f"value({step.variable})")
        elif isinstance(step, SumOverPeriodStep):
            parts.append(f"sum_over_period({step.variable}, {step.days} d)")
        elif isinstance(step, ChangeStep):
            kind = "relative " if step.relative else ""
            parts.append(f"{kind}change({step.variable}, {step.rounds} round(s))")
        elif isinstance(step, RatioToRollingMaxStep):
            parts.append(f"ratio_to_rolling_max({step.variable}, {step.rounds} rounds)")
        elif isinstance(step, PerCapitaStep):
            parts.append(f"per_capita({step.denominator}, per {step.per:g})")
        elif isinstance(step, ShareStep):
            parts.append(f"share({step.denominator})")
        elif isinstance(step, Log1pStep):
            parts.append("log1p")
        elif isinstance(step, WinsoriseStep):
            parts.append(f"winsorise({step.lower:g}-{step.upper:g})")
    return " > ".join(parts)


def describe_normalisation(indicator: Indicator) -> str:
    """The normalisation as one line."""
    norm = indicator.normalisation
    if isinstance(norm, Goalposts):
        text = f"goalposts {norm.lower:g}..{norm.upper:g}"
    else:
        text = f"min-max over {norm.reference}"
    if indicator.direction == "lower_is_riskier":
        text += ", inverted"
    return text
