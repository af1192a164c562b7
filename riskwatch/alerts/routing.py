"""Who gets an alert: areas and their ancestors, active deployments, usable channels, silences.

A deployment to an area covers its sub-areas, so an alert on an area reaches every expert with
an active deployment on the area itself or on one of its ancestors (its admin1, its country).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime

from sqlmodel import Session, col, select

from riskwatch.db.models import Area, Channel, Deployment, Expert, Silence


@dataclass(frozen=True)
class AreaInfo:
    pcode: str
    name: str
    admin_level: int
    parent_pcode: str | None
    country_iso3: str


@dataclass
class AreaIndex:
    """Every area with its parent, for ancestor chains (loaded once per evaluation)."""

    areas: dict[str, AreaInfo]
    _chains: dict[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session) -> AreaIndex:
        rows = session.exec(
            select(Area.pcode, Area.name, Area.admin_level, Area.parent_pcode, Area.country_iso3)
        ).all()
        return cls(
            {str(p): AreaInfo(str(p), str(n), int(lvl), par, str(c)) for p, n, lvl, par, c in rows}
        )

    def get(self, pcode: str) -> AreaInfo | None:
        return self.areas.get(pcode)

    def chain(self, pcode: str) -> tuple[str, ...]:
        """The area and its ancestors, finest first, ending with the country (ISO3)."""
        cached = self._chains.get(pcode)
        if cached is not None:
            return cached
        chain: list[str] = []
        current: str | None = pcode
        country = self.areas[pcode].country_iso3 if pcode in self.areas else None
        while current is not None and current not in chain:
            chain.append(current)
            info = self.areas.get(current)
            current = info.parent_pcode if info is not None else None
        # Admin1 areas often have no parent row: the country still covers them.
        if country and country not in chain:
            chain.append(country)
        result = tuple(chain)
        self._chains[pcode] = result
        return result

    def admin1_of(self, pcode: str) -> str | None:
        """The admin1 area an area lies in (itself at admin1), None at the country level."""
        for code in self.chain(pcode):
            info = self.areas.get(code)
            if info is not None and info.admin_level == 1:
                return code
        return None

    def name(self, pcode: str | None) -> str | None:
        if pcode is None:
            return None
        info = self.areas.get(pcode)
        return info.name if info is not None else pcode

    def group_key(self, pcode: str) -> str:
        """Grouping key country/admin1 (the country alone for country-level alerts)."""
        info = self.areas.get(pcode)
        country = info.country_iso3 if info is not None else pcode[:3]
        admin1 = self.admin1_of(pcode)
        return f"{country}/{admin1}" if admin1 else country

    def descendants_or_self(self, pcodes: set[str]) -> set[str]:
        """Every area inside one of ``pcodes`` (and those areas)."""
        return {pcode for pcode in self.areas if set(self.chain(pcode)) & pcodes}


def is_active(deployment: Deployment, today: date) -> bool:
    """A deployment runs from starts_on to ends_on inclusive (an empty bound is open)."""
    if deployment.starts_on is not None and deployment.starts_on > today:
        return False
    return deployment.ends_on is None or deployment.ends_on >= today


@dataclass
class Routing:
    """Active deployments by area, experts and their usable channels, active silences."""

    areas: AreaIndex
    experts: dict[int, Expert]
    deployed_on: dict[str, set[int]]  # area pcode -> expert ids deployed there
    channels: dict[int, list[Channel]]  # expert id -> healthy, enabled channels
    silences: list[Silence]

    @classmethod
    def load(cls, session: Session, areas: AreaIndex, now: datetime) -> Routing:
        experts = {
            e.id: e
            for e in session.exec(select(Expert).where(col(Expert.active))).all()
            if e.id is not None
        }
        deployed_on: dict[str, set[int]] = defaultdict(set)
        for deployment in session.exec(select(Deployment)).all():
            if deployment.expert_id in experts and is_active(deployment, now.date()):
                deployed_on[deployment.area_pcode].add(deployment.expert_id)
        channels: dict[int, list[Channel]] = defaultdict(list)
        for channel in session.exec(
            select(Channel)
            .where(col(Channel.healthy), col(Channel.disabled_at).is_(None))
            .order_by(col(Channel.id))
        ).all():
            channels[channel.expert_id].append(channel)
        silences = list(
            session.exec(
                select(Silence)
                .where(col(Silence.starts_at) <= now, col(Silence.ends_at) > now)
                .order_by(col(Silence.id))
            ).all()
        )
        return cls(areas, experts, dict(deployed_on), dict(channels), silences)

    def covering_experts(self, pcode: str) -> set[int]:
        """Experts whose active deployment covers the area (on it or an ancestor)."""
        found: set[int] = set()
        for code in self.areas.chain(pcode):
            found |= self.deployed_on.get(code, set())
        return found

    def all_channels(self, session: Session, expert_id: int) -> list[Channel]:
        """Every channel of an expert, usable or not (to explain why nothing was sent)."""
        return list(session.exec(select(Channel).where(Channel.expert_id == expert_id)).all())

    def silence_for(self, pcode: str, rule: str) -> Silence | None:
        """The first active silence covering this area (or an ancestor) and rule."""
        chain = set(self.areas.chain(pcode))
        for silence in self.silences:
            if silence.area_pcode in chain and (silence.rule in (None, "", rule)):
                return silence
        return None

    def expert_areas(self, expert_id: int) -> set[str]:
        """Areas an expert is actively deployed to."""
        return {pcode for pcode, ids in self.deployed_on.items() if expert_id in ids}
