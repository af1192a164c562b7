"""The small static map in alert e-mails: the group's region, alert areas outlined.

Drawn on the server without a browser by :func:`riskwatch.map_png.render_map_png` (the same
renderer as the PNG export), at e-mail size. Areas are coloured by their risk class in the
latest score run; the areas the message is about are highlighted. Only area boundaries and
classes are drawn: no sites, no points, no counts.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import geopandas as gpd
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from riskwatch.config import Settings
from riskwatch.db.models import Area, AreaScore, ScoreRun

MAP_WIDTH_PX = 480
MAP_HEIGHT_PX = 360
MAX_AREAS = 400


def _latest_classes(session: Session, pcodes: list[str]) -> dict[str, str]:
    """Risk class of each area in the latest score run, at its latest period there."""
    run_id = session.exec(select(func.max(ScoreRun.id))).one()
    if run_id is None or not pcodes:
        return {}
    rows = session.exec(
        select(col(AreaScore.area_pcode), col(AreaScore.period), col(AreaScore.risk_class)).where(
            AreaScore.run_id == run_id, col(AreaScore.area_pcode).in_(pcodes)
        )
    ).all()
    latest: dict[str, tuple[Any, str]] = {}
    for pcode, period, risk_class in rows:
        if pcode not in latest or period > latest[pcode][0]:
            latest[pcode] = (period, risk_class)
    return {pcode: value[1] for pcode, value in latest.items()}


def map_frame(session: Session, payload: Mapping[str, Any]) -> tuple[gpd.GeoDataFrame, set[str]]:
    """(areas to draw with pcode/name/geometry/risk_class, pcodes to highlight)."""
    alerts = [a for a in payload.get("alerts") or [] if isinstance(a, Mapping)]
    highlight = {str(a.get("pcode")) for a in alerts if a.get("pcode")}
    group = payload.get("group") or {}
    parents = {str(group["admin1_pcode"])} if group.get("admin1_pcode") else set()
    parents |= {str(a["admin1_pcode"]) for a in alerts if a.get("admin1_pcode")}
    query = (
        select(Area)
        .where(
            (Area.parent_pcode.in_(sorted(parents)))  # type: ignore[union-attr]
            | (Area.pcode.in_(sorted(highlight)))  # type: ignore[attr-defined]
        )
        .limit(MAX_AREAS)
    )
    areas = [a for a in session.exec(query).all() if a.geometry is not None]
    if not areas and parents:  # admin1 alerts: draw the regions themselves
        areas = [
            a
            for a in session.exec(
                select(Area).where(Area.pcode.in_(sorted(parents)))  # type: ignore[attr-defined]
            ).all()
            if a.geometry is not None
        ]
    classes = _latest_classes(session, [a.pcode for a in areas])
    frame = gpd.GeoDataFrame(
        {
            "pcode": [a.pcode for a in areas],
            "name": [a.name for a in areas],
            "risk_class": [classes.get(a.pcode, "insufficient_data") for a in areas],
        },
        geometry=[a.geometry for a in areas],
        crs="EPSG:4326",
    )
    return frame, highlight


def map_png_for_payload(
    engine: Engine, settings: Settings, payload: Mapping[str, Any]
) -> bytes | None:
    """PNG bytes of the group's map, or None when there is nothing with a boundary to draw."""
    with Session(engine) as session:
        frame, highlight = map_frame(session, payload)
    if frame.empty:
        return None
    group = payload.get("group") or {}
    title = ", ".join(str(p) for p in (group.get("admin1_name"), group.get("country_name")) if p)
    footer = (
        "riskwatch - risk class of the latest score run; alert areas outlined. "
        "Aggregated areas only."
    )
    from riskwatch.map_png import render_map_png

    return render_map_png(
        frame,
        highlight=highlight,
        title=title or "riskwatch",
        footer=footer,
        width_px=MAP_WIDTH_PX,
        height_px=MAP_HEIGHT_PX,
        labels=len(frame) <= 25,
        metadata={"Source": "riskwatch alert"},
    )
