"""The hotspot stage of a score run: Gi* hotspots of the risk score and of every indicator,
their temporal classes, IDP surges (per area and rolled up to admin1 and the country) and
conflict-event surges, stored as :class:`~riskwatch.db.models.Hotspot` rows.

For every country and admin level, and every period of that country the run scored:

- **Gi*** on the risk score (``variable = "risk"``) over the areas that have a geometry, BH
  correction across them, ``hotspot_class`` (:func:`riskwatch.hotspots.hotspot_statistics`);
  the weights are built once per country and level (one boundary version in a run) and reused
  for every period and every variable, through the memory and disk cache of
  :mod:`riskwatch.spatial_weights`;
- the same on each indicator's 0-10 score (``variable = <indicator id>``, CONTRACTS.md: "hotspots
  of the risk score unless --variable names an indicator"). An indicator is analysed at a
  country, level and period only where at least :data:`MIN_AREAS` areas with a geometry have a
  score (Gi* over one or two values says nothing); it gets a row only for those areas, so
  an indicator unavailable in a country has no rows there (never a row of zeros);
- **temporal class** of each area at each period from its Gi* results at the periods up to and
  including it (:func:`riskwatch.hotspots.emerging_classes`), so a period's class is what an
  analyst would have seen then; a period not analysed is a bin neither hot nor cold;
- **surge** of IDPs (the preferred assessment type, as scored) per area
  (:func:`riskwatch.surges.detect_surges`, rounds per country and admin level), then rolled up
  (:func:`riskwatch.surges.aggregate_surges`) from the finest level to admin1 and to the
  country. The roll-up rule: a parent surges in a period when its own figures surge *or* any
  of its children surges (children's flags already include their own children's).
  ``surge_size`` is the parent's own increase when its own figures surge (the figure reported
  for it is the better measure), else the sum of its surging children's increases. Only
  parents that are scored areas get the flag (they have rows); a child without a scored
  parent is left out of the roll-up. Indicator rows carry the surge of the risk row of the same
  area and period.
- **conflict-event surges**: the monthly ``conflict_events`` per area, with the same machinery
  (:data:`CONFLICT_MIN_EVENTS`, :data:`CONFLICT_MIN_RATIO`), stored as rows with
  ``variable = "conflict_events"``: Gi* and temporal classes on the monthly counts (periods
  are months, not the scoring periods), ``surge``/``surge_size`` the conflict surge. The
  displacement surge column of the other rows is never overloaded with it. Months an area has
  no observation are missing, not zero (the source coverage is not applied here), so an area
  surges only from a month with a reported count.

Every scored area gets a risk row, also areas without a risk value (insufficient data) or
without a geometry: ``not_significant``, temporal class ``none``, empty statistics; their surge
flag is still computed, since a surge needs no geometry. There is no ``[hotspots]`` settings
section yet: the module constants carry the library defaults.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import numpy as np
import pandas as pd
from sqlalchemy import insert
from sqlalchemy import select as sa_select
from sqlmodel import Session, col

from riskwatch.db.models import Area, Hotspot
from riskwatch.hotspots import (
    HOT_CLASSES,
    NO_PATTERN,
    NOT_SIGNIFICANT,
    emerging_classes,
    hotspot_statistics,
)
from riskwatch.observations import observations_frame, preferred_values
from riskwatch.spatial_weights import build_weights
from riskwatch.surges import (
    DEFAULT_MIN_ABSOLUTE,
    DEFAULT_MIN_RATIO,
    aggregate_surges,
    detect_surges,
)

if TYPE_CHECKING:  # score_runs imports this module for its default stages
    from libpysal.graph import Graph

    from riskwatch.score_runs import ScoreRunContext
    from riskwatch.scoring import ScoreTable

#: The variable of the risk score's hotspots (other values name an indicator).
RISK_VARIABLE = "risk"
#: The variable whose surges are flagged on every hotspot row.
SURGE_VARIABLE = "idps"
#: No ``[hotspots]`` settings yet: the surge thresholds are the library defaults (HDX Signals).
SURGE_MIN_ABSOLUTE = DEFAULT_MIN_ABSOLUTE
SURGE_MIN_RATIO = DEFAULT_MIN_RATIO
#: The variable of the conflict-event surges and hotspots (monthly counts per area).
CONFLICT_VARIABLE = "conflict_events"
#: A conflict surge: at least 10 more events than the reference and 1.5 times it (a handful of
#: events more in a quiet area is noise; HDX Signals gates its conflict signals the same way).
CONFLICT_MIN_EVENTS = 10.0
CONFLICT_MIN_RATIO = 1.5
#: Fewest areas with a value for Gi* on an indicator at a country, level and period.
MIN_AREAS = 3
CRS = "EPSG:4326"  # what the database stores (riskwatch.db.types.SRID)
_INSERT_CHUNK = 5000

#: Columns of :func:`risk_hotspots` and :func:`hotspot_rows`.
HOTSPOT_COLUMNS = ["pcode", "period", "gi_z", "p_value", "p_fdr", "hotspot_class",
                   "temporal_class"]
#: Columns of :func:`variable_hotspots` (long: one row per variable, area and period).
VARIABLE_COLUMNS = ["variable", *HOTSPOT_COLUMNS]
#: Columns of a long frame of values for :func:`variable_hotspots`.
VALUE_COLUMNS = ["pcode", "admin_level", "country_iso3", "period", "variable", "value"]


def hotspot_stage(context: ScoreRunContext) -> None:
    """The score-run stage: compute and store the run's hotspot rows (same transaction)."""
    run_id = context.run.id
    assert run_id is not None
    units = context.table.units
    if units.empty:
        return
    session = context.session
    geometries = load_geometries(session, sorted(set(units["pcode"])))
    cache_dir = context.settings.resolved_data_dir / "cache" / "weights"
    conflict = conflict_values(context)
    # One call for every variable: the weights of a country and level are built once.
    values = pd.concat([risk_values(units), indicator_values(context.table), conflict],
                       ignore_index=True)
    stats = variable_hotspots(values, geometries, cache_dir=cache_dir)
    is_risk = stats["variable"] == RISK_VARIABLE
    surges = rolled_up_surges(idp_surges(context), context.areas, set(units["pcode"]))
    risk_rows = hotspot_rows(units, stats[is_risk].drop(columns="variable"), surges)
    risk_rows["variable"] = RISK_VARIABLE
    others = stats[~is_risk & (stats["variable"] != CONFLICT_VARIABLE)]
    indicator_rows = others.merge(risk_rows[["pcode", "period", "surge", "surge_size"]],
                                  on=["pcode", "period"], how="left")
    conflict_rows = conflict_hotspot_rows(stats[stats["variable"] == CONFLICT_VARIABLE],
                                          conflict_surges(conflict))
    rows = pd.concat([risk_rows, indicator_rows, conflict_rows], ignore_index=True)
    rows["surge"] = rows["surge"].fillna(False).astype(bool)
    _write(session, run_id, rows)


def load_geometries(session: Session, pcodes: Sequence[str]) -> gpd.GeoDataFrame:
    """pcode and geometry of the areas among ``pcodes`` that have one, sorted by pcode."""
    wanted = set(pcodes)
    statement = sa_select(col(Area.pcode), col(Area.geometry)).where(
        col(Area.geometry).is_not(None)
    )
    rows = [(p, g) for p, g in session.connection().execute(statement).all()
            if p in wanted and g is not None and not g.is_empty]
    rows.sort(key=lambda row: row[0])
    return gpd.GeoDataFrame({"pcode": [p for p, _ in rows]},
                            geometry=[g for _, g in rows], crs=CRS)


# --- hotspots of the risk and of the indicators ----------------------------------------------


def risk_values(units: pd.DataFrame) -> pd.DataFrame:
    """The risk of a ScoreTable's ``units`` as a long frame (:data:`VALUE_COLUMNS`)."""
    frame = units[["pcode", "admin_level", "country_iso3", "period", "risk"]]
    return frame.rename(columns={"risk": "value"}).assign(variable=RISK_VARIABLE)[VALUE_COLUMNS]


def indicator_values(table: ScoreTable) -> pd.DataFrame:
    """Each indicator's 0-10 score per scored unit, as a long frame (:data:`VALUE_COLUMNS`).

    The ScoreTable's indicator matrix has one row per unit (the rows of ``table.units``, same
    order) and one column per indicator; units where an indicator is unavailable are left out.
    """
    matrix = table.indicators
    keys = table.units[["pcode", "admin_level", "country_iso3", "period"]]
    parts = []
    for i, indicator_id in enumerate(matrix.ids):
        score = matrix.score[:, i]
        present = ~np.isnan(score)
        if present.any():
            parts.append(keys[present].assign(variable=indicator_id, value=score[present]))
    if not parts:
        return _empty_values()
    return pd.concat(parts, ignore_index=True)[VALUE_COLUMNS]


def _empty_values() -> pd.DataFrame:
    return pd.DataFrame({name: pd.Series(dtype=object) for name in VALUE_COLUMNS})


def risk_hotspots(
    units: pd.DataFrame, geometries: gpd.GeoDataFrame, *, cache_dir: Path | None = None
) -> pd.DataFrame:
    """Gi* and temporal classes of the risk for the scored ``units`` that have a geometry.

    ``units`` is a :class:`~riskwatch.scoring.ScoreTable`'s frame (pcode, admin_level,
    country_iso3, period, risk). Returns :data:`HOTSPOT_COLUMNS` for the units analysed (a
    geometry and a risk value, in a period with at least :data:`MIN_AREAS` of them); the caller
    fills the others (:func:`hotspot_rows`).
    """
    stats = variable_hotspots(risk_values(units), geometries, cache_dir=cache_dir)
    return stats[HOTSPOT_COLUMNS]


def variable_hotspots(
    values: pd.DataFrame,
    geometries: gpd.GeoDataFrame,
    *,
    cache_dir: Path | None = None,
    min_areas: int = MIN_AREAS,
) -> pd.DataFrame:
    """Gi* and temporal classes of every variable of a long frame (:data:`VALUE_COLUMNS`).

    Per country and admin level the weights are built once over the located areas of every
    variable; per variable, a period is analysed when at least ``min_areas`` areas with a
    geometry have a value. Returns :data:`VARIABLE_COLUMNS` for the areas with a geometry and a
    value in the periods analysed.
    """
    located = values[values["pcode"].isin(geometries["pcode"]) & values["value"].notna()]
    parts = [
        frame
        for _, group in located.groupby(["country_iso3", "admin_level"], sort=True)
        for frame in _group_hotspots(group, geometries, cache_dir, min_areas)
    ]
    if not parts:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in VARIABLE_COLUMNS})
    return pd.concat(parts, ignore_index=True)[VARIABLE_COLUMNS]


def _group_hotspots(
    values: pd.DataFrame, geometries: gpd.GeoDataFrame, cache_dir: Path | None, min_areas: int
) -> list[pd.DataFrame]:
    """One country and admin level: per variable, Gi* per period, then the temporal class."""
    pcodes = sorted(set(values["pcode"]))
    areas = geometries[geometries["pcode"].isin(pcodes)].reset_index(drop=True)
    # One graph for every period and variable: the areas (one boundary version) do not change.
    weights, _ = build_weights(areas, cache_dir=cache_dir)
    # Variables and periods mostly share the same set of areas with a value: cut the graph
    # down to each set once (cutting is the dearest step of a Gi* on a given graph).
    subgraphs: dict[tuple[str, ...], Graph] = {}
    results = []
    for variable, rows in values.groupby("variable", sort=True):
        wide = rows.pivot(index="pcode", columns="period", values="value")
        counts = wide.notna().sum()
        periods = sorted(p for p in wide.columns if counts[p] >= min_areas)
        if not periods:
            continue
        wide = wide.reindex(areas["pcode"])
        stats = pd.concat(
            [_period_statistics(areas, wide[period], weights, subgraphs).assign(period=period)
             for period in periods],
            ignore_index=True,
        )
        results.append(_with_temporal(stats, wide, periods).assign(variable=variable))
    return results


def _period_statistics(
    areas: gpd.GeoDataFrame, values: pd.Series, weights: Graph,
    subgraphs: dict[tuple[str, ...], Graph],
) -> pd.DataFrame:
    """Gi* of one period over the areas with a value, on the graph cut down to them."""
    mask = values.notna().to_numpy()
    analysed = areas[mask].reset_index(drop=True)
    key = tuple(analysed["pcode"])
    if key not in subgraphs:
        subgraphs[key] = weights if mask.all() else weights.subgraph(np.array(key, dtype=object))
    return hotspot_statistics(analysed, values[mask], weights=subgraphs[key])


def _with_temporal(stats: pd.DataFrame, wide: pd.DataFrame, periods: list[Any]) -> pd.DataFrame:
    """The temporal class of every analysed cell; the rows of areas without a value dropped."""
    z = stats.pivot(index="pcode", columns="period", values="gi_z").reindex(columns=periods)
    classes = stats.pivot(index="pcode", columns="period", values="hotspot_class")
    classes = classes.reindex(columns=periods)
    temporal = pd.DataFrame(
        {period: emerging_classes(z.iloc[:, : i + 1], classes.iloc[:, : i + 1])
         for i, period in enumerate(periods)}
    )
    stats = stats.merge(
        temporal.stack().rename("temporal_class").rename_axis(["pcode", "period"]).reset_index(),
        on=["pcode", "period"], how="left",
    )
    # An area without a value in a period was not analysed: it gets no row (the risk's caller
    # fills the defaults for it).
    present = wide.stack().dropna().rename("value").rename_axis(["pcode", "period"])
    present = present.reset_index()
    return stats.merge(present[["pcode", "period"]], on=["pcode", "period"], how="inner")


# --- surges ----------------------------------------------------------------------------------


def idp_surges(context: ScoreRunContext) -> pd.DataFrame:
    """IDP surges (pcode, period, surge, surge_size) of the run's areas.

    The run's observations already hold IDPs when they are among its period variables (the
    default): then they are reused; else they are read as known at the run's ``data_as_of``,
    reduced to the run's preferred assessment type like the score's inputs.
    """
    observations = context.observations
    idps = observations[observations["variable"] == SURGE_VARIABLE]
    if idps.empty:  # not among the run's variables (or no IDPs at all: then this is cheap)
        idps = _load_idps(context)
    idps = idps[["pcode", "period", "value"]].merge(
        context.areas[["pcode", "admin_level", "country_iso3"]], on="pcode", how="inner"
    )
    return surges_of(idps)


def surges_of(idps: pd.DataFrame) -> pd.DataFrame:
    """Surges of one value per pcode and period (columns pcode, period, value, admin_level,
    country_iso3): the rounds are those of each country and admin level."""
    if idps.empty:
        return pd.DataFrame({"pcode": pd.Series(dtype=object), "period": pd.Series(dtype=object),
                             "surge": pd.Series(dtype=bool),
                             "surge_size": pd.Series(dtype=np.float64)})
    found = detect_surges(idps, min_absolute=SURGE_MIN_ABSOLUTE, min_ratio=SURGE_MIN_RATIO,
                          by=["country_iso3", "admin_level"])
    return found[["pcode", "period", "surge", "surge_size"]]


def _load_idps(context: ScoreRunContext) -> pd.DataFrame:
    params = context.run.params or {}
    preference = tuple(params.get("assessment_preference") or ("BA", "SA", "ETT"))
    raw = observations_frame(context.session, variables=[SURGE_VARIABLE],
                             as_of=context.run.data_as_of)
    return preferred_values(raw, preference)


def rolled_up_surges(
    surges: pd.DataFrame, areas: pd.DataFrame, scored: set[str]
) -> pd.DataFrame:
    """Area surges (pcode, period, surge, surge_size) with the roll-up of the module docstring.

    Level by level from the finest, each level's flags (its own or its children's) are rolled
    up to the scored parents (``parent_pcode``; the country's ISO3 for an admin1 area without
    one) with :func:`riskwatch.surges.aggregate_surges`.
    """
    frame = surges[["pcode", "period", "surge", "surge_size"]].copy()
    if frame.empty:
        return frame
    info = areas.set_index("pcode")
    level_of = info["admin_level"]
    parent_of = info["parent_pcode"].where(info["parent_pcode"].notna(),
                                           info["country_iso3"].where(level_of == 1))
    frame["surge"] = frame["surge"].astype(bool)
    for level in sorted({int(v) for v in frame["pcode"].map(level_of).dropna()}, reverse=True):
        if level == 0:
            continue
        children = frame[(frame["pcode"].map(level_of) == level) & frame["surge"]]
        children = children[children["pcode"].map(parent_of).isin(scored)]
        if children.empty:
            continue
        rolled = aggregate_surges(children, parent_of[parent_of.isin(scored)])
        rolled = rolled[["pcode", "period", "surge_size"]].rename(
            columns={"surge_size": "children_size"})
        frame = frame.merge(rolled, on=["pcode", "period"], how="outer")
        own = frame["surge"].fillna(False).astype(bool)
        # The parent's own surge wins (its own figure measures it); else its children's sum.
        frame["surge_size"] = frame["surge_size"].where(own, frame["children_size"])
        frame["surge"] = own | frame["children_size"].notna()
        frame = frame.drop(columns="children_size")
    return frame.sort_values(["pcode", "period"], ignore_index=True)


def conflict_values(context: ScoreRunContext) -> pd.DataFrame:
    """Monthly conflict events of the run's scored areas, as a long frame (VALUE_COLUMNS)."""
    observations = context.observations
    events = observations[observations["variable"] == CONFLICT_VARIABLE]
    if events.empty:
        return _empty_values()
    scored = set(context.table.units["pcode"])
    events = events[events["pcode"].isin(scored)]
    return events[["pcode", "period", "value"]].merge(
        context.areas[["pcode", "admin_level", "country_iso3"]], on="pcode", how="inner"
    ).assign(variable=CONFLICT_VARIABLE)[VALUE_COLUMNS]


def conflict_surges(values: pd.DataFrame) -> pd.DataFrame:
    """Conflict-event surges (pcode, period, surge, surge_size) of :func:`conflict_values`."""
    if values.empty:
        return pd.DataFrame({"pcode": pd.Series(dtype=object), "period": pd.Series(dtype=object),
                             "surge": pd.Series(dtype=bool),
                             "surge_size": pd.Series(dtype=np.float64)})
    found = detect_surges(values, min_absolute=CONFLICT_MIN_EVENTS,
                          min_ratio=CONFLICT_MIN_RATIO, by=["country_iso3", "admin_level"])
    return found[["pcode", "period", "surge", "surge_size"]]


def conflict_hotspot_rows(stats: pd.DataFrame, surges: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``conflict_events``: every area-month with a count, its Gi* where analysed."""
    rows = surges.merge(stats.drop(columns="variable"), on=["pcode", "period"], how="left")
    rows["variable"] = CONFLICT_VARIABLE
    rows["hotspot_class"] = rows["hotspot_class"].fillna(NOT_SIGNIFICANT)
    rows["temporal_class"] = rows["temporal_class"].fillna(NO_PATTERN)
    return rows


# --- rows ------------------------------------------------------------------------------------


def hotspot_rows(
    units: pd.DataFrame, risk: pd.DataFrame, surges: pd.DataFrame
) -> pd.DataFrame:
    """One row per scored unit: its risk hotspot statistics (or the not-analysed defaults)
    and the area's IDP surge in that period (False when it has no IDP figure then)."""
    rows = units[["pcode", "period"]].merge(risk, on=["pcode", "period"], how="left")
    rows = rows.merge(surges, on=["pcode", "period"], how="left")
    rows["hotspot_class"] = rows["hotspot_class"].fillna(NOT_SIGNIFICANT)
    rows["temporal_class"] = rows["temporal_class"].fillna(NO_PATTERN)
    rows["surge"] = rows["surge"].fillna(False).astype(bool)
    rows["surge_size"] = rows["surge_size"].where(rows["surge"])
    return rows.sort_values(["pcode", "period"], ignore_index=True)


def _optional(value: Any) -> float | None:
    return None if value is None or pd.isna(value) else float(value)


def _write(session: Session, run_id: int, rows: pd.DataFrame) -> None:
    records: list[dict[str, Any]] = []
    for row in rows.itertuples(index=False):
        records.append({
            "run_id": run_id, "area_pcode": row.pcode, "period": row.period,
            "variable": row.variable, "gi_z": _optional(row.gi_z),
            "p_value": _optional(row.p_value), "p_fdr": _optional(row.p_fdr),
            "hotspot_class": row.hotspot_class, "temporal_class": row.temporal_class,
            "surge": bool(row.surge),
            "surge_size": _optional(row.surge_size) if row.surge else None,
        })
        if len(records) >= _INSERT_CHUNK:
            session.execute(insert(Hotspot), records)
            records = []
    if records:
        session.execute(insert(Hotspot), records)


# --- summary ---------------------------------------------------------------------------------


@dataclass
class HotspotSummary:
    """What the ``score`` command prints about a run's hotspots."""

    # country -> (its latest period, hotspot class -> areas), hot classes only
    hot_by_country: dict[str, tuple[date, dict[str, int]]] = field(default_factory=dict)
    # (pcode, admin level, period, surge size) of the areas surging in their country's latest
    surging: list[tuple[str, int, date, float]] = field(default_factory=list)
    # country -> (its latest month of conflict events, areas with a conflict surge then)
    conflict_surges: dict[str, tuple[date, int]] = field(default_factory=dict)


def summarise_hotspots(session: Session, run_id: int) -> HotspotSummary:
    """Hot areas by class and surging areas in each country's latest period of the run."""
    summary = HotspotSummary()
    frame = _summary_frame(session, run_id, RISK_VARIABLE)
    conflict = _summary_frame(session, run_id, CONFLICT_VARIABLE)
    if not conflict.empty:
        last = conflict[conflict["period"] == conflict.groupby("country")["period"]
                        .transform("max")]
        for country, rows in last.groupby("country", sort=True):
            summary.conflict_surges[str(country)] = (rows["period"].iloc[0],
                                                     int(rows["surge"].astype(bool).sum()))
    if frame.empty:
        return summary
    latest = frame[frame["period"] == frame.groupby("country")["period"].transform("max")]
    for country, rows in latest.groupby("country", sort=True):
        hot = rows[rows["hotspot_class"].isin(HOT_CLASSES)]["hotspot_class"].value_counts()
        summary.hot_by_country[str(country)] = (
            rows["period"].iloc[0], {str(k): int(v) for k, v in hot.items()}
        )
    surging = latest[latest["surge"].astype(bool)].sort_values(
        ["surge_size", "pcode"], ascending=[False, True])
    summary.surging = [(r.pcode, int(r.admin_level), r.period, float(r.surge_size))
                       for r in surging.itertuples(index=False)]
    return summary


def _summary_frame(session: Session, run_id: int, variable: str) -> pd.DataFrame:
    """The run's rows of one variable with each area's level and country."""
    statement = sa_select(
        col(Hotspot.area_pcode), col(Hotspot.period), col(Hotspot.hotspot_class),
        col(Hotspot.surge), col(Hotspot.surge_size), col(Area.admin_level),
        col(Area.country_iso3),
    ).join(Area, col(Area.pcode) == col(Hotspot.area_pcode)).where(
        col(Hotspot.run_id) == run_id, col(Hotspot.variable) == variable
    )
    frame = pd.DataFrame(
        [tuple(r) for r in session.connection().execute(statement).all()],
        columns=["pcode", "period", "hotspot_class", "surge", "surge_size", "admin_level",
                 "country"],
    )
    if not frame.empty:
        frame["period"] = frame["period"].map(
            lambda p: p if isinstance(p, date) else date.fromisoformat(str(p)[:10]))
    return frame
