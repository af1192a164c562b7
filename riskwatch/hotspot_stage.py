"""The hotspot stage of a score run: Gi* hotspots of the risk score, their temporal classes, and
IDP surges, stored as one :class:`~riskwatch.db.models.Hotspot` row per scored area and period.

For every country and admin level, and every period of that country the run scored:

- **Gi*** on the risk score (``variable = "risk"``) over the areas that have a geometry, BH
  correction across them, ``hotspot_class`` (:func:`riskwatch.hotspots.hotspot_statistics`);
  the weights are built once per country and level (one boundary version in a run) and reused
  for every period, through the memory and disk cache of :mod:`riskwatch.spatial_weights`;
- **temporal class** of each area at each period from its Gi* results at the periods up to and
  including it (:func:`riskwatch.hotspots.emerging_classes`), so a period's class is what an
  analyst would have seen then;
- **surge** of IDPs (the preferred assessment type, as scored) per area
  (:func:`riskwatch.surges.detect_surges`, rounds per country and admin level).

Every scored area gets a row, also areas without a risk value (insufficient data) or without a
geometry: ``not_significant``, temporal class ``none``, empty statistics; their surge flag is
still computed, since a surge needs no geometry. There is no ``[hotspots]`` settings section
yet: the module constants carry the library defaults.
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
from riskwatch.surges import DEFAULT_MIN_ABSOLUTE, DEFAULT_MIN_RATIO, detect_surges

if TYPE_CHECKING:  # score_runs imports this module for its default stages
    from riskwatch.score_runs import ScoreRunContext

#: The variable of the risk score's hotspots (other values name an indicator).
RISK_VARIABLE = "risk"
#: The variable whose surges are flagged on every hotspot row.
SURGE_VARIABLE = "idps"
#: No ``[hotspots]`` settings yet: the surge thresholds are the library defaults (HDX Signals).
SURGE_MIN_ABSOLUTE = DEFAULT_MIN_ABSOLUTE
SURGE_MIN_RATIO = DEFAULT_MIN_RATIO
CRS = "EPSG:4326"  # what the database stores (riskwatch.db.types.SRID)
_INSERT_CHUNK = 5000

#: Columns of :func:`risk_hotspots` and :func:`hotspot_rows`.
HOTSPOT_COLUMNS = ["pcode", "period", "gi_z", "p_value", "p_fdr", "hotspot_class",
                   "temporal_class"]


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
    risk = risk_hotspots(units, geometries, cache_dir=cache_dir)
    surges = idp_surges(context)
    _write(session, run_id, hotspot_rows(units, risk, surges))


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


# --- risk hotspots ---------------------------------------------------------------------------


def risk_hotspots(
    units: pd.DataFrame, geometries: gpd.GeoDataFrame, *, cache_dir: Path | None = None
) -> pd.DataFrame:
    """Gi* and temporal classes of the risk for the scored ``units`` that have a geometry.

    ``units`` is a :class:`~riskwatch.scoring.ScoreTable`'s frame (pcode, admin_level,
    country_iso3, period, risk). Returns :data:`HOTSPOT_COLUMNS` for every unit whose area has a
    geometry; the caller fills the others.
    """
    located = units[units["pcode"].isin(geometries["pcode"])]
    parts = [
        _group_hotspots(group, geometries, cache_dir)
        for _, group in located.groupby(["country_iso3", "admin_level"], sort=True)
    ]
    if not parts:
        return pd.DataFrame({name: pd.Series(dtype=object) for name in HOTSPOT_COLUMNS})
    return pd.concat(parts, ignore_index=True)[HOTSPOT_COLUMNS]


def _group_hotspots(
    units: pd.DataFrame, geometries: gpd.GeoDataFrame, cache_dir: Path | None
) -> pd.DataFrame:
    """One country and admin level: Gi* per period, then the temporal class per period."""
    pcodes = sorted(set(units["pcode"]))
    areas = geometries[geometries["pcode"].isin(pcodes)].reset_index(drop=True)
    # One graph for every period: the areas (one boundary version in a run) do not change.
    weights, _ = build_weights(areas, cache_dir=cache_dir)
    risk = units.pivot(index="pcode", columns="period", values="risk").reindex(areas["pcode"])
    periods = sorted(risk.columns)
    results = []
    for period in periods:
        stats = hotspot_statistics(areas, risk[period], weights=weights)
        results.append(stats.assign(period=period))
    stats = pd.concat(results, ignore_index=True)
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
    ).merge(units[["pcode", "period", "risk"]], on=["pcode", "period"], how="left")
    # An area without a risk value this period was not analysed: nothing to classify.
    stats["temporal_class"] = stats["temporal_class"].where(stats["risk"].notna(), NO_PATTERN)
    return stats


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
            "variable": RISK_VARIABLE, "gi_z": _optional(row.gi_z),
            "p_value": _optional(row.p_value), "p_fdr": _optional(row.p_fdr),
            "hotspot_class": row.hotspot_class, "temporal_class": row.temporal_class,
            "surge": bool(row.surge), "surge_size": _optional(row.surge_size),
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


def summarise_hotspots(session: Session, run_id: int) -> HotspotSummary:
    """Hot areas by class and surging areas in each country's latest period of the run."""
    statement = sa_select(
        col(Hotspot.area_pcode), col(Hotspot.period), col(Hotspot.hotspot_class),
        col(Hotspot.surge), col(Hotspot.surge_size), col(Area.admin_level),
        col(Area.country_iso3),
    ).join(Area, col(Area.pcode) == col(Hotspot.area_pcode)).where(
        col(Hotspot.run_id) == run_id, col(Hotspot.variable) == RISK_VARIABLE
    )
    frame = pd.DataFrame(
        [tuple(r) for r in session.connection().execute(statement).all()],
        columns=["pcode", "period", "hotspot_class", "surge", "surge_size", "admin_level",
                 "country"],
    )
    summary = HotspotSummary()
    if frame.empty:
        return summary
    frame["period"] = frame["period"].map(
        lambda p: p if isinstance(p, date) else date.fromisoformat(str(p)[:10]))
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
