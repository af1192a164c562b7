"""Demo experts: fictitious people whose channels capture messages locally (never sent out).

CONTRACTS "Demo isolation": demo experts only have ``capture`` channels, which write each
message under ``<data_dir>/demo/outbox/``. Three experts:

* a French-speaking expert deployed to the surge region ``XD07`` (admin1: covers its districts),
* an English-speaking expert deployed to another region, away from the surge,
* a regional focal point (English) who receives escalations of unacknowledged critical alerts.

Idempotent: running it again finds the experts by their (fixed) names and changes nothing.
"""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from riskwatch.config import Settings
from riskwatch.db.models import Area, Expert
from riskwatch.demo import DEMO_COUNTRY_ISO3
from riskwatch.errors import RiskwatchError
from riskwatch.experts import ChannelSpec, add_expert

SURGE_ADMIN1 = "XD07"
# The surge cluster touches XD07 and XD08; the "elsewhere" expert avoids both.
_NEAR_SURGE = frozenset({"XD07", "XD08"})
PREFERRED_OTHER_ADMIN1 = "XD02"

FOCAL_POINT_NAME = "Demo focal point (regional)"
SURGE_EXPERT_NAME = "Demo expert Terrain (fr)"
OTHER_EXPERT_NAME = "Demo expert Elsewhere (en)"


def _other_admin1(session: Session) -> str:
    pcodes = sorted(
        session.exec(
            select(Area.pcode).where(Area.admin_level == 1, Area.country_iso3 == DEMO_COUNTRY_ISO3)
        ).all()
    )
    if PREFERRED_OTHER_ADMIN1 in pcodes:
        return PREFERRED_OTHER_ADMIN1
    candidates = [p for p in pcodes if p not in _NEAR_SURGE]
    if not candidates:
        raise RiskwatchError(
            "the demo has no admin1 region away from the surge; ingest the demo boundaries first"
        )
    return candidates[0]


def create_demo_experts(engine: Engine, settings: Settings) -> list[int]:
    """Create (once) the demo experts; returns [surge expert, other expert, focal point] ids."""
    with Session(engine) as session:
        if session.get(Area, SURGE_ADMIN1) is None:
            raise RiskwatchError(
                f"the demo region {SURGE_ADMIN1} is not loaded; ingest the demo "
                "boundaries before creating demo experts"
            )
        existing = {
            e.name: e.id
            for e in session.exec(
                select(Expert).where(Expert.active == True)  # noqa: E712 - SQL comparison
            ).all()
        }
        other_admin1 = _other_admin1(session)

    def ensure(name: str, **kwargs: object) -> int:
        if name in existing and existing[name] is not None:
            return int(existing[name])  # type: ignore[arg-type]
        added = add_expert(engine, settings, name, actor="demo", **kwargs)  # type: ignore[arg-type]
        existing[name] = added.expert_id
        return added.expert_id

    focal = ensure(
        FOCAL_POINT_NAME, channels=[ChannelSpec("capture", "focal-point")], language="en"
    )
    surge = ensure(
        SURGE_EXPERT_NAME,
        channels=[ChannelSpec("capture", "expert-xd07-fr")],
        language="fr",
        areas=[SURGE_ADMIN1],
        focal_point_id=focal,
    )
    other = ensure(
        OTHER_EXPERT_NAME,
        channels=[ChannelSpec("capture", f"expert-{other_admin1.lower()}-en")],
        language="en",
        areas=[other_admin1],
        focal_point_id=focal,
    )
    return [surge, other, focal]
