"""Experts, their channels and their deployments (``riskwatch experts`` and the dashboard).

An expert has a language (the messages' templates), one or more channels (e-mail, webhook,
Apprise URL; ``capture`` for the demo) and deployments: areas at any admin level, each covering
its sub-areas, optionally limited by start and end dates. A regional focal point (another
expert) receives escalations.

Channel targets and webhook secrets are stored encrypted (:mod:`riskwatch.secretbox`) with a
redacted form for display. Outbound URLs may not point at loopback or private addresses unless
``allow_private_addresses`` is on. Removing an expert keeps the history (notifications,
acknowledgements) but deactivates the expert, ends the deployments and erases the channel
targets.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from riskwatch.channels.base import PermanentError, check_outbound_url
from riskwatch.channels.webhook import secret_key_bytes
from riskwatch.config import Settings
from riskwatch.db.engine import session_scope
from riskwatch.db.models import Area, AuditEvent, Channel, Deployment, Expert
from riskwatch.errors import RiskwatchError, UsageError
from riskwatch.messages import SUPPORTED_LANGUAGES
from riskwatch.secretbox import encrypt, generate_webhook_secret, redact
from riskwatch.timeutil import utcnow

_EMAIL = re.compile(r"^[^@\s<>,;]+@[^@\s<>,;]+$")


class ExpertError(RiskwatchError):
    """An expert could not be added or changed (unknown area, focal point, bad channel)."""


@dataclass(frozen=True)
class ChannelSpec:
    """One channel to add: its kind, target (plaintext) and secret (webhooks)."""

    kind: str
    target: str
    secret: str | None = None


@dataclass
class AddedExpert:
    """The result of :func:`add_expert`; ``generated_secret`` must be shown once, then lost."""

    expert_id: int
    channel_ids: list[int]
    deployment_ids: list[int]
    generated_secret: str | None = None


@dataclass(frozen=True)
class ChannelView:
    """A channel as shown to people: redacted target and health."""

    id: int
    kind: str
    target: str
    healthy: bool
    disabled_at: datetime | None
    last_success_at: datetime | None
    last_error_at: datetime | None
    last_error: str | None
    consecutive_failures: int


@dataclass(frozen=True)
class DeploymentView:
    """A deployment: area (pcode, name, level) and dates."""

    id: int
    area_pcode: str
    area_name: str
    admin_level: int
    starts_on: date | None
    ends_on: date | None


@dataclass
class ExpertView:
    """An expert with channels and deployments, for the CLI and the dashboard."""

    id: int
    name: str
    language: str
    active: bool
    focal_point_id: int | None
    focal_point_name: str | None
    channels: list[ChannelView] = field(default_factory=list)
    deployments: list[DeploymentView] = field(default_factory=list)


def check_email(address: str) -> str:
    """A plausible single e-mail address, stripped; ExpertError otherwise."""
    value = address.strip()
    if not _EMAIL.match(value):
        raise ExpertError(f"not an e-mail address: {value!r}")
    return value


def check_webhook(url: str, secret: str | None, settings: Settings) -> tuple[str, str, bool]:
    """(url, secret, generated): validated URL and a Standard Webhooks secret (made if absent)."""
    value = url.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ExpertError("a webhook URL is http:// or https:// with a host")
    if parts.username or parts.password:
        raise ExpertError("a webhook URL may not carry a user name or password")
    try:
        check_outbound_url(
            value, allow_private_addresses=settings.allow_private_addresses, what="webhook"
        )
    except PermanentError as exc:
        raise ExpertError(str(exc)) from None
    generated = secret is None
    secret_value = generate_webhook_secret() if secret is None else secret.strip()
    try:
        secret_key_bytes(secret_value)
    except ValueError as exc:
        raise ExpertError(f"webhook secret: {exc}") from None
    return value, secret_value, generated


def check_apprise(url: str, settings: Settings) -> str:
    """A URL Apprise recognises, whose server (if it names one) is not private."""
    from riskwatch.channels.apprise import check_apprise_url  # apprise is slow to import

    value = url.strip()
    try:
        check_apprise_url(value, allow_private_addresses=settings.allow_private_addresses)
    except PermanentError as exc:
        raise ExpertError(str(exc)) from None
    return value


def read_apprise_urls(text: str) -> list[str]:
    """Apprise URLs from a file's text: one per line (or separated by spaces), ``#`` comments."""
    urls: list[str] = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].strip() if not line.lstrip().startswith("#") else ""
        urls.extend(part for part in line.split() if part)
    return urls


def _check_language(language: str) -> str:
    code = (language or "en").strip().lower()
    if code not in SUPPORTED_LANGUAGES:
        raise UsageError(
            f"language {language!r} has no message templates; use one of "
            f"{', '.join(SUPPORTED_LANGUAGES)}"
        )
    return code


def _resolve_areas(session: Session, pcodes: Iterable[str]) -> list[Area]:
    areas: list[Area] = []
    unknown: list[str] = []
    for pcode in pcodes:
        value = pcode.strip()
        area = session.get(Area, value) or session.get(Area, value.upper())
        if area is None:
            unknown.append(value)
        else:
            areas.append(area)
    if unknown:
        raise ExpertError(
            f"unknown area pcode(s): {', '.join(unknown)} (load boundaries or a gazetteer first; "
            "`riskwatch export areas --format csv` lists the known pcodes)"
        )
    return areas


def add_expert(
    engine: Engine,
    settings: Settings,
    name: str,
    *,
    channels: Sequence[ChannelSpec],
    language: str = "en",
    areas: Sequence[str] = (),
    starts_on: date | None = None,
    ends_on: date | None = None,
    focal_point_id: int | None = None,
    actor: str = "cli",
) -> AddedExpert:
    """Create an expert with channels and deployments in one transaction.

    Webhook specs without a secret get a generated one, returned once in ``generated_secret``.
    Raises UsageError (no channel, unsupported language, dates reversed) or ExpertError
    (unknown area or focal point, refused channel target).
    """
    clean_name = " ".join(name.split())
    if not clean_name or len(clean_name) > 200:
        raise UsageError("an expert needs a name of 1 to 200 characters")
    if not channels:
        raise UsageError(
            "an expert needs at least one channel (--email, --webhook or --apprise-file)"
        )
    code = _check_language(language)
    if starts_on and ends_on and ends_on < starts_on:
        raise UsageError(f"--to {ends_on} is before --from {starts_on}")
    generated: str | None = None
    checked: list[ChannelSpec] = []
    for spec in channels:
        if spec.kind == "email":
            checked.append(ChannelSpec("email", check_email(spec.target)))
        elif spec.kind == "webhook":
            url, secret, made = check_webhook(spec.target, spec.secret, settings)
            generated = secret if made else generated
            checked.append(ChannelSpec("webhook", url, secret))
        elif spec.kind == "apprise":
            checked.append(ChannelSpec("apprise", check_apprise(spec.target, settings)))
        elif spec.kind == "capture":
            checked.append(ChannelSpec("capture", spec.target.strip() or "capture"))
        else:
            raise UsageError(f"unknown channel kind {spec.kind!r}")
    with session_scope(engine) as session:
        if focal_point_id is not None:
            focal = session.get(Expert, focal_point_id)
            if focal is None or not focal.active:
                raise ExpertError(f"unknown focal point: no active expert with id {focal_point_id}")
        deployed = _resolve_areas(session, areas)
        expert = Expert(name=clean_name, language=code, focal_point_id=focal_point_id)
        session.add(expert)
        session.flush()
        assert expert.id is not None
        channel_rows = [
            Channel(
                expert_id=expert.id,
                kind=spec.kind,
                target_encrypted=encrypt(settings, spec.target),
                target_redacted=redact(spec.kind, spec.target)[:300],
                secret_encrypted=encrypt(settings, spec.secret) if spec.secret else None,
            )
            for spec in checked
        ]
        deployment_rows = [
            Deployment(
                expert_id=expert.id, area_pcode=area.pcode, starts_on=starts_on, ends_on=ends_on
            )
            for area in deployed
        ]
        session.add_all(channel_rows)
        session.add_all(deployment_rows)
        session.flush()
        session.add(
            AuditEvent(
                actor=actor,
                action="expert_added",
                object_type="expert",
                object_id=str(expert.id),
                detail={
                    "channels": [spec.kind for spec in checked],
                    "areas": [area.pcode for area in deployed],
                    "focal_point_id": focal_point_id,
                    "language": code,
                },
            )
        )
        return AddedExpert(
            expert_id=expert.id,
            channel_ids=[c.id for c in channel_rows if c.id is not None],
            deployment_ids=[d.id for d in deployment_rows if d.id is not None],
            generated_secret=generated,
        )


def list_experts(session: Session, *, include_inactive: bool = False) -> list[ExpertView]:
    """Experts with redacted channels, channel health and deployments, by id."""
    query = select(Expert).order_by(col(Expert.id))
    if not include_inactive:
        query = query.where(Expert.active == True)  # noqa: E712 - SQL comparison
    experts = list(session.exec(query).all())
    names = {e.id: e.name for e in session.exec(select(Expert)).all()}
    ids = [e.id for e in experts]
    channels = (
        session.exec(
            select(Channel).where(col(Channel.expert_id).in_(ids)).order_by(col(Channel.id))
        ).all()
        if ids
        else []
    )
    deployments = (
        session.exec(
            select(Deployment, Area)
            .join(Area, col(Area.pcode) == col(Deployment.area_pcode))
            .where(col(Deployment.expert_id).in_(ids))
            .order_by(col(Deployment.id))
        ).all()
        if ids
        else []
    )
    views = {
        e.id: ExpertView(
            id=e.id,
            name=e.name,
            language=e.language,
            active=e.active,
            focal_point_id=e.focal_point_id,
            focal_point_name=names.get(e.focal_point_id),
        )
        for e in experts
        if e.id is not None
    }
    for channel in channels:
        views[channel.expert_id].channels.append(
            ChannelView(
                id=channel.id or 0,
                kind=channel.kind,
                target=channel.target_redacted,
                healthy=channel.healthy,
                disabled_at=channel.disabled_at,
                last_success_at=channel.last_success_at,
                last_error_at=channel.last_error_at,
                last_error=channel.last_error,
                consecutive_failures=channel.consecutive_failures,
            )
        )
    for deployment, area in deployments:
        views[deployment.expert_id].deployments.append(
            DeploymentView(
                id=deployment.id or 0,
                area_pcode=area.pcode,
                area_name=area.name,
                admin_level=area.admin_level,
                starts_on=deployment.starts_on,
                ends_on=deployment.ends_on,
            )
        )
    return list(views.values())


def remove_expert(engine: Engine, settings: Settings, expert_id: int, *, actor: str = "cli") -> str:
    """Deactivate an expert: end deployments, disable channels and erase their targets.

    History (notifications, decisions, acknowledgements) keeps pointing at the expert row.
    Returns the expert's name; ExpertError for an unknown or already removed expert.
    """
    now = utcnow()
    with session_scope(engine) as session:
        expert = session.get(Expert, expert_id)
        if expert is None or not expert.active:
            raise ExpertError(f"unknown expert id {expert_id}")
        expert.active = False
        session.add(expert)
        for channel in session.exec(select(Channel).where(Channel.expert_id == expert_id)).all():
            channel.target_encrypted = encrypt(settings, "")
            channel.secret_encrypted = None
            channel.target_redacted = "(removed)"
            channel.healthy = False
            channel.disabled_at = channel.disabled_at or now
            channel.last_error = "expert removed"
            channel.last_error_at = now
            session.add(channel)
        today = now.date()
        for deployment in session.exec(
            select(Deployment).where(Deployment.expert_id == expert_id)
        ).all():
            if deployment.ends_on is None or deployment.ends_on > today:
                deployment.ends_on = today
                session.add(deployment)
        session.add(
            AuditEvent(
                actor=actor, action="expert_removed", object_type="expert", object_id=str(expert_id)
            )
        )
        return expert.name


def reenable_channel(engine: Engine, channel_id: int, *, actor: str) -> None:
    """Clear a channel's disabled state after someone fixed the target (dashboard action)."""
    with session_scope(engine) as session:
        channel = session.get(Channel, channel_id)
        if channel is None:
            raise ExpertError(f"unknown channel id {channel_id}")
        channel.disabled_at = None
        channel.healthy = True
        channel.consecutive_failures = 0
        session.add(channel)
        session.add(
            AuditEvent(
                actor=actor,
                action="channel_enabled",
                object_type="channel",
                object_id=str(channel_id),
            )
        )


def _overlaps(
    start_a: date | None, end_a: date | None, start_b: date | None, end_b: date | None
) -> bool:
    """Whether two date ranges (None: open-ended, both ends inclusive) share a day."""
    return (start_a is None or end_b is None or start_a <= end_b) and (
        start_b is None or end_a is None or start_b <= end_a
    )


def add_deployment(
    engine: Engine,
    expert_id: int,
    area_pcode: str,
    *,
    starts_on: date | None = None,
    ends_on: date | None = None,
    actor: str,
) -> DeploymentView:
    """Deploy an active expert to a known area (covering its sub-areas) for a period.

    Raises UsageError (dates reversed) or ExpertError (unknown or removed expert, unknown
    area, a deployment of the same expert to the same area overlapping the period).
    """
    if starts_on and ends_on and ends_on < starts_on:
        raise UsageError(f"the end {ends_on} is before the start {starts_on}")
    with session_scope(engine) as session:
        expert = session.get(Expert, expert_id)
        if expert is None or not expert.active:
            raise ExpertError(f"unknown expert id {expert_id}")
        (area,) = _resolve_areas(session, [area_pcode])
        for other in session.exec(
            select(Deployment).where(
                Deployment.expert_id == expert_id, Deployment.area_pcode == area.pcode
            )
        ).all():
            if _overlaps(other.starts_on, other.ends_on, starts_on, ends_on):
                raise ExpertError(
                    f"{expert.name} is already deployed to {area.pcode} in that period "
                    f"(deployment {other.id})"
                )
        deployment = Deployment(
            expert_id=expert_id, area_pcode=area.pcode, starts_on=starts_on, ends_on=ends_on
        )
        session.add(deployment)
        session.flush()
        assert deployment.id is not None
        session.add(
            AuditEvent(
                actor=actor,
                action="deployment_added",
                object_type="deployment",
                object_id=str(deployment.id),
                detail={
                    "expert_id": expert_id,
                    "area": area.pcode,
                    "from": starts_on.isoformat() if starts_on else None,
                    "to": ends_on.isoformat() if ends_on else None,
                },
            )
        )
        return DeploymentView(
            id=deployment.id,
            area_pcode=area.pcode,
            area_name=area.name,
            admin_level=area.admin_level,
            starts_on=starts_on,
            ends_on=ends_on,
        )


def end_deployment(
    engine: Engine, deployment_id: int, *, actor: str, today: date | None = None
) -> date | None:
    """End a deployment now: its last day becomes yesterday, so it no longer covers today.

    A deployment that has not started yet is removed instead (its period never comes). Returns
    the new last day, or None when the deployment was removed. ExpertError for an unknown
    deployment or one that has already ended.
    """
    day = today or utcnow().date()
    last_day = day - timedelta(days=1)
    with session_scope(engine) as session:
        deployment = session.get(Deployment, deployment_id)
        if deployment is None:
            raise ExpertError(f"unknown deployment id {deployment_id}")
        if deployment.ends_on is not None and deployment.ends_on < day:
            raise ExpertError(
                f"deployment {deployment_id} already ended on {deployment.ends_on.isoformat()}"
            )
        detail = {
            "expert_id": deployment.expert_id,
            "area": deployment.area_pcode,
            "from": deployment.starts_on.isoformat() if deployment.starts_on else None,
            "to": deployment.ends_on.isoformat() if deployment.ends_on else None,
        }
        not_started = deployment.starts_on is not None and deployment.starts_on > last_day
        if not_started:
            session.delete(deployment)
        else:
            deployment.ends_on = last_day
            session.add(deployment)
        session.add(
            AuditEvent(
                actor=actor,
                action="deployment_removed" if not_started else "deployment_ended",
                object_type="deployment",
                object_id=str(deployment_id),
                detail={**detail, "last_day": None if not_started else last_day.isoformat()},
            )
        )
        return None if not_started else last_day


def area_lineage(session: Session, pcode: str) -> list[str]:
    """The area and its ancestors' pcodes, finest first (a deployment covers sub-areas)."""
    lineage: list[str] = []
    current: str | None = pcode
    while current and current not in lineage and len(lineage) < 12:
        lineage.append(current)
        area = session.get(Area, current)
        if area is None:
            break
        current = area.parent_pcode or (
            area.country_iso3 if area.admin_level > 0 and area.country_iso3 != area.pcode else None
        )
    return lineage


def deployed_expert_ids(session: Session, area_pcode: str, *, on: date) -> list[int]:
    """Active experts with a deployment, valid on ``on``, to the area or one of its ancestors."""
    lineage = area_lineage(session, area_pcode)
    rows = session.exec(
        select(col(Deployment.expert_id), col(Deployment.starts_on), col(Deployment.ends_on))
        .join(Expert, col(Expert.id) == col(Deployment.expert_id))
        .where(col(Deployment.area_pcode).in_(lineage), col(Expert.active).is_(True))
    ).all()
    return sorted(
        {
            expert_id
            for expert_id, starts, ends in rows
            if (starts is None or starts <= on) and (ends is None or on <= ends)
        }
    )


def expert_ids_deployed_in(session: Session, countries: Sequence[str]) -> set[int]:
    """Experts with a deployment (past, current or future) to an area of these countries (ISO3)."""
    scope = {c.upper() for c in countries}
    rows = session.exec(
        select(Deployment.expert_id, Area.country_iso3).join(
            Area, col(Area.pcode) == col(Deployment.area_pcode)
        )
    ).all()
    return {
        int(expert_id)
        for expert_id, country in rows
        if country is not None and country.upper() in scope
    }
