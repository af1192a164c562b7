"""The outbox dispatcher: claim due notifications, send them, record what happened.

Conventions (DESIGN.md, after healthchecks' ``sendalerts``):

* **Claim by conditional UPDATE.** One statement moves due rows (``pending``/``retrying`` with
  ``next_attempt_at <= now``, or ``claimed`` rows whose claim is older than
  ``delivery.claim_timeout_seconds``: their dispatcher died) to ``claimed`` under a claim token
  unique to this batch, and returns exactly the rows it changed. On PostgreSQL the candidate
  rows are picked ``FOR UPDATE SKIP LOCKED`` and the WHERE clause is re-checked by the UPDATE
  itself, so several dispatchers never claim one row at the same time; on SQLite the single
  statement is atomic.
* **Delivered only after the channel confirmed.** A row is marked ``delivered`` (with
  ``delivered_at``) only once its transport returned a receipt. A dispatcher killed between the
  send and the bookkeeping leaves the row ``claimed``; after the claim timeout another
  dispatcher sends it again with the same idempotency key (at least once; the webhook-id, the
  e-mail Message-ID and the capture file name stay the same, so receivers can fold duplicates).
  Such a duplicate is counted (``already_delivered``) when it is noticed.
* **Retries.** Transient errors reschedule the row with exponential backoff and jitter, up to
  ``delivery.max_attempts``; permanent errors stop at once and mark the channel (unhealthy,
  and disabled when the target itself is gone, e.g. HTTP 410). Notifications for a disabled
  channel are not sent: they fail with the reason.
* **Identical retries.** Messages are rendered from the payload and the notification's
  ``created_at`` (the ack link expires ``delivery.ack_link_ttl_hours`` after it), never from
  the current time.
* **Batched, pipelined bookkeeping.** The results of one claimed batch are written in one
  transaction; while a batch is sent (``delivery.concurrency`` messages at once), the next one
  is claimed and rendered and the previous one recorded, in two helper threads. This keeps the
  dispatcher within 2x of a bare loop of signed POSTs (tests/benchmarks).
"""

from __future__ import annotations

import logging
import os
import random
import socket
import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import and_, bindparam, or_, select, update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from riskwatch.ack_tokens import ack_url, make_ack_token
from riskwatch.channels import make_transport
from riskwatch.channels.base import (
    DeliveryReceipt,
    OutgoingMessage,
    PermanentError,
    TransientError,
    Transport,
)
from riskwatch.config import Settings
from riskwatch.db.models import (
    AlertDecision,
    AuditEvent,
    Channel,
    Expert,
    Notification,
    NotificationAlert,
)
from riskwatch.messages import RenderedMessage, render_notification
from riskwatch.secretbox import SecretboxError, decrypt
from riskwatch.timeutil import to_utc, utcnow

log = logging.getLogger(__name__)

PENDING = "pending"
RETRYING = "retrying"
CLAIMED = "claimed"
DELIVERED = "delivered"
FAILED = "failed"
DUE_STATUSES = (PENDING, RETRYING)
_ERROR_MAX = 1900
_counts_lock = threading.Lock()

_table = Notification.__table__  # type: ignore[attr-defined]
_channels = Channel.__table__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class PlannedMessage:
    """What a dry run would send: the rendered message and where it would go (redacted)."""

    notification_id: int
    idempotency_key: str
    kind: str
    expert_id: int
    channel_id: int
    channel_kind: str
    target: str  # redacted
    subject: str
    text: str
    short: str
    language: str
    blocked: str | None = None  # why it would not be sent (disabled channel...)


@dataclass
class DispatchResult:
    """What one dispatch run did. ``counts`` keys: claimed, delivered, retrying, failed,
    channel_disabled, skipped_disabled, already_delivered, lost_claim, would_send."""

    counts: dict[str, int] = field(default_factory=dict)
    planned: list[PlannedMessage] = field(default_factory=list)
    worker_id: str = ""

    def add(self, key: str, amount: int = 1) -> None:
        with _counts_lock:  # the sending loop and the bookkeeping thread both count
            self.counts[key] = self.counts.get(key, 0) + amount


@dataclass
class _Claimed:
    id: int
    expert_id: int
    channel_id: int
    idempotency_key: str
    kind: str
    attempts: int
    payload: dict[str, Any]
    created_at: datetime
    alert_id: int | None


@dataclass
class _Batch:
    """One claimed batch: its claim token, clock, and rows prepared for sending."""

    token: str
    current: datetime
    prepared: list[tuple[_Claimed, Any]]
    claimed_at: datetime = field(default_factory=utcnow)  # wall clock, whatever ``now`` says


@dataclass
class _Outcome:
    row: _Claimed
    status: str  # delivered / retrying / failed
    error: str | None = None
    next_attempt_at: datetime | None = None
    receipt: DeliveryReceipt | None = None
    disable_channel: bool = False
    channel_problem: bool = False  # counts as a channel failure (not a disabled-skip)


def default_worker_id() -> str:
    """host:pid:random, unique per dispatcher process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _due_condition(current: datetime, claim_timeout: timedelta) -> Any:
    return or_(
        and_(_table.c.status.in_(DUE_STATUSES), _table.c.next_attempt_at <= current),
        and_(_table.c.status == CLAIMED, _table.c.claimed_at < current - claim_timeout),
    )


def _claim(
    engine: Engine, token: str, current: datetime, size: int, claim_timeout: timedelta
) -> list[_Claimed]:
    """Claim up to ``size`` due rows for ``token``; exactly the rows this statement changed."""
    due = _due_condition(current, claim_timeout)
    candidates = (
        select(_table.c.id).where(due).order_by(_table.c.next_attempt_at, _table.c.id).limit(size)
    )
    returning = (
        _table.c.id,
        _table.c.expert_id,
        _table.c.channel_id,
        _table.c.idempotency_key,
        _table.c.kind,
        _table.c.attempts,
        _table.c.payload,
        _table.c.created_at,
        _table.c.alert_id,
    )
    claim = dict(
        status=CLAIMED, claimed_by=token, claimed_at=current, attempts=_table.c.attempts + 1
    )
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Lock the candidates first (other dispatchers skip them), then update exactly
            # those. A LIMIT subquery inside UPDATE ... IN (...) may be re-evaluated by the
            # planner and claim more rows than asked; two statements in one transaction cannot.
            ids = connection.execute(candidates.with_for_update(skip_locked=True)).scalars().all()
            if not ids:
                return []
            where = _table.c.id.in_(ids)
        else:
            # SQLite: one statement is atomic (writers are serialised), no read-then-write race.
            where = _table.c.id.in_(candidates.scalar_subquery())
        rows = connection.execute(
            update(_table).where(where, due).values(**claim).returning(*returning)
        ).all()
    claimed = [
        _Claimed(
            id=r.id,
            expert_id=r.expert_id,
            channel_id=r.channel_id,
            idempotency_key=r.idempotency_key,
            kind=r.kind or "alert",
            attempts=r.attempts,
            payload=dict(r.payload or {}),
            created_at=to_utc(r.created_at),
            alert_id=r.alert_id,
        )
        for r in rows
    ]
    claimed.sort(key=lambda row: row.id)
    return claimed


def _renew_claim(engine: Engine, token: str, current: datetime) -> set[int]:
    """Refresh ``claimed_at`` of the rows still claimed under ``token``; their ids."""
    with engine.begin() as connection:
        rows = connection.execute(
            update(_table)
            .where(_table.c.claimed_by == token, _table.c.status == CLAIMED)
            .values(claimed_at=current)
            .returning(_table.c.id)
        ).all()
    return {row.id for row in rows}


def _backoff(settings: Settings, attempts: int, retry_after: float | None) -> float:
    """Seconds until the next attempt: exponential, with jitter (0.5-1x), capped."""
    delivery = settings.delivery
    exponential = delivery.backoff_base_seconds * (2 ** max(0, attempts - 1))
    delay = min(delivery.backoff_max_seconds, exponential) * random.uniform(0.5, 1.0)
    if retry_after is not None:
        delay = max(delay, min(retry_after, delivery.backoff_max_seconds))
    return delay


class _ChannelInfo:
    """A channel row with its target and secret decrypted once per run."""

    def __init__(self, channel: Channel, expert_active: bool, settings: Settings) -> None:
        self.id = channel.id
        self.kind = channel.kind
        self.redacted = channel.target_redacted
        self.disabled_at = channel.disabled_at
        self.expert_active = expert_active
        self.error: str | None = None
        self.target = ""
        self.secret: str | None = None
        try:
            self.target = decrypt(settings, channel.target_encrypted)
            if channel.secret_encrypted:
                self.secret = decrypt(settings, channel.secret_encrypted)
        except SecretboxError as exc:
            self.error = str(exc)

    @property
    def blocked(self) -> str | None:
        if self.disabled_at is not None:
            return f"channel {self.id} is disabled since {self.disabled_at:%Y-%m-%d %H:%M} UTC"
        if not self.expert_active:
            return "the expert is inactive"
        return self.error


class _MapCache:
    """Static map images for e-mails, one per group per run (several experts share a group)."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self._engine = engine
        self._settings = settings
        self._images: dict[str, bytes | None] = {}
        # One map at a time: drawing is CPU-bound and geopandas plotting is not thread-safe.
        self._lock = threading.Lock()

    def get(self, payload: dict[str, Any]) -> bytes | None:
        group = payload.get("group") or {}
        pcodes = sorted(str(a.get("pcode")) for a in payload.get("alerts") or [])
        key = f"{group.get('key')}|{','.join(pcodes)}"
        with self._lock:
            return self._get(key, group, payload)

    def _get(self, key: str, group: dict[str, Any], payload: dict[str, Any]) -> bytes | None:
        if key not in self._images:
            try:
                from riskwatch.channels.email_map import map_png_for_payload

                self._images[key] = map_png_for_payload(self._engine, self._settings, payload)
            except Exception as exc:  # noqa: BLE001 - a map is a bonus; the message still goes
                log.warning("no map image for group %s: %s", group.get("key"), exc)
                self._images[key] = None
        return self._images[key]


class _Transports:
    """One transport per channel kind per sending thread (connections are not thread-safe)."""

    def __init__(self, settings: Settings, factory: Callable[[str, Settings], Transport]) -> None:
        self._settings = settings
        self._factory = factory
        self._local = threading.local()
        self._all: list[Transport] = []
        self._lock = threading.Lock()

    def get(self, kind: str) -> Transport:
        mine: dict[str, Transport] | None = getattr(self._local, "transports", None)
        if mine is None:
            mine = self._local.transports = {}
        transport = mine.get(kind)
        if transport is None:
            transport = mine[kind] = self._factory(kind, self._settings)
            with self._lock:
                self._all.append(transport)
        return transport

    def close(self) -> None:
        for transport in self._all:
            try:
                transport.close()
            except Exception as exc:  # noqa: BLE001 - closing must not hide the run's result
                log.debug("closing a transport failed: %s", exc)
        self._all.clear()


def render_for(
    settings: Settings,
    row: _Claimed | Notification,
    *,
    map_cid: str | None = None,
    with_html: bool = True,
) -> tuple[RenderedMessage, str | None]:
    """The rendered message and ack link of a notification (same output on every retry)."""
    payload = dict(row.payload or {})
    created_at = to_utc(row.created_at)
    alert_ids = [
        int(a["alert_id"])
        for a in payload.get("alerts") or []
        if isinstance(a, dict) and isinstance(a.get("alert_id"), int)
    ]
    if not alert_ids and row.alert_id is not None:
        alert_ids = [row.alert_id]
    link = None
    if alert_ids:
        expires = created_at + timedelta(hours=settings.delivery.ack_link_ttl_hours)
        link = ack_url(settings, make_ack_token(settings, alert_ids, row.expert_id, expires))
    rendered = render_notification(
        payload,
        created_at=created_at,
        ack_link=link,
        base_url=str(settings.base_url),
        map_cid=map_cid,
        with_html=with_html,
    )
    return rendered, link


def _load_channels(
    session: Session, settings: Settings, channel_ids: Iterable[int]
) -> dict[int, _ChannelInfo]:
    ids = sorted(set(channel_ids))
    if not ids:
        return {}
    rows = session.execute(
        select(Channel, col(Expert.active))
        .join(Expert, col(Expert.id) == col(Channel.expert_id))
        .where(col(Channel.id).in_(ids))
    ).all()
    return {channel.id: _ChannelInfo(channel, bool(active), settings) for channel, active in rows}


def dispatch_due(
    engine: Engine,
    settings: Settings,
    *,
    now: datetime | None = None,
    dry_run: bool = False,
    worker_id: str | None = None,
    limit: int | None = None,
    transport_factory: Callable[[str, Settings], Transport] | None = None,
) -> DispatchResult:
    """Deliver the notifications that are due; see the module docstring for the guarantees.

    ``now`` fixes the clock (tests, catch-up runs); ``limit`` caps how many rows this call
    claims; ``dry_run`` claims nothing, sends nothing and returns the rendered messages that
    would go out in ``planned``. ``transport_factory`` replaces :func:`make_transport`.
    """
    worker = worker_id or default_worker_id()
    result = DispatchResult(worker_id=worker)
    if dry_run:
        _plan(engine, settings, now=now, limit=limit, result=result)
        return result
    transports = _Transports(settings, transport_factory or make_transport)
    maps = _MapCache(engine, settings)
    claim_timeout = timedelta(seconds=settings.delivery.claim_timeout_seconds)
    # Parallel sends overlap network waits (and rendering) of several messages; each worker
    # thread has its own kept-alive connections.
    pool = (
        ThreadPoolExecutor(settings.delivery.concurrency, thread_name_prefix="dispatch")
        if settings.delivery.concurrency > 1
        else None
    )
    # A pipeline of three stages, one batch each: while batch k is being sent, a "stage"
    # thread claims and renders batch k+1 and a "database" thread records batch k-1. Threads
    # overlap the waits for the endpoints' answers (the GIL is released then). A dispatcher
    # killed meanwhile leaves at most two batches claimed and unrecorded: after the claim
    # timeout they are sent again, with the same idempotency keys.
    stage = ThreadPoolExecutor(1, thread_name_prefix="dispatch-stage")
    database = ThreadPoolExecutor(1, thread_name_prefix="dispatch-db")
    recorded: list[Future[None]] = []
    remaining = limit
    batch_number = 0
    claim_lock = threading.Lock()

    def next_batch() -> _Batch:
        nonlocal batch_number, remaining
        with claim_lock:
            if remaining is not None and remaining <= 0:
                return _Batch("", utcnow(), [])
            size = settings.delivery.batch_size
            if remaining is not None:
                size = min(size, remaining)
            current = to_utc(now) if now is not None else utcnow()
            batch_number += 1
            token = f"{worker}#{batch_number}"[:200]
            rows = _claim(engine, token, current, size, claim_timeout)
            if remaining is not None:
                remaining -= len(rows)
        if not rows:
            return _Batch(token, current, [])
        result.add("claimed", len(rows))
        with Session(engine) as session:
            channels = _load_channels(session, settings, (r.channel_id for r in rows))
        return _Batch(
            token,
            current,
            [
                _prepare_one(row, channels=channels, settings=settings, maps=maps, current=current)
                for row in rows
            ],
        )

    try:
        batch = next_batch()
        while batch.prepared:
            upcoming = stage.submit(next_batch)
            # A prefetched batch that waited long while the previous one was sent renews its
            # claim first, and leaves out any row another dispatcher took over meanwhile.
            if utcnow() - batch.claimed_at > claim_timeout / 4:
                held = _renew_claim(engine, batch.token, to_utc(now) if now else utcnow())
                if len(held) < len(batch.prepared):
                    result.add("lost_claim", len(batch.prepared) - len(held))
                    batch.prepared = [item for item in batch.prepared if item[0].id in held]
            transmit = partial(
                _transmit_one, settings=settings, transports=transports, current=batch.current
            )
            outcomes = (
                list(pool.map(transmit, batch.prepared))
                if pool
                else [transmit(item) for item in batch.prepared]
            )
            # delivered_at and channel health carry the time the batch was confirmed.
            confirmed = to_utc(now) if now is not None else utcnow()
            recorded.append(
                database.submit(_record, engine, batch.token, outcomes, confirmed, result)
            )
            batch = upcoming.result()
            if not batch.prepared:
                # The batch being recorded may make rows due again (zero backoff): look again.
                recorded[-1].result()
                batch = next_batch()
        for future in recorded:
            future.result()  # raises the first bookkeeping error, if any
    finally:
        # Never leave a batch unrecorded when stopping on an error: wait for the writes.
        stage.shutdown(wait=True)
        database.shutdown(wait=True)
        if pool is not None:
            pool.shutdown(wait=True)
        transports.close()
    return result


def _prepare_one(
    row: _Claimed,
    *,
    channels: dict[int, _ChannelInfo],
    settings: Settings,
    maps: _MapCache,
    current: datetime,
) -> tuple[_Claimed, OutgoingMessage | _Outcome]:
    """The rendered message for a row, or already its outcome (blocked channel, bad row)."""
    channel = channels.get(row.channel_id)
    if channel is None:
        return row, _Outcome(row, FAILED, error=f"channel {row.channel_id} no longer exists")
    blocked = channel.blocked
    if blocked is not None:
        return row, _Outcome(row, FAILED, error=f"not sent: {blocked}")
    try:
        map_png = maps.get(row.payload) if channel.kind == "email" else None
        map_cid = None
        if map_png:
            from riskwatch.channels.email import map_content_id

            map_cid = map_content_id(row.idempotency_key)
        rendered, link = render_for(
            settings, row, map_cid=map_cid, with_html=channel.kind in ("email", "capture")
        )
    except Exception as exc:  # noqa: BLE001 - one broken row must not stop the batch
        log.exception("cannot render notification %s", row.id)
        return row, _retry_or_fail(row, settings, current, f"cannot render: {exc!r}", None)
    return row, OutgoingMessage(
        notification_id=row.id,
        idempotency_key=row.idempotency_key,
        kind=row.kind,
        channel_kind=channel.kind,
        target=channel.target,
        secret=channel.secret,
        rendered=rendered,
        payload=row.payload,
        created_at=row.created_at,
        ack_link=link,
        map_png=map_png,
    )


def _transmit_one(
    prepared: tuple[_Claimed, OutgoingMessage | _Outcome],
    *,
    settings: Settings,
    transports: _Transports,
    current: datetime,
) -> _Outcome:
    """Send a prepared message; the outcome decides the row's next state."""
    row, message = prepared
    if isinstance(message, _Outcome):
        return message
    try:
        receipt = transports.get(message.channel_kind).send(message)
    except PermanentError as exc:
        return _Outcome(
            row, FAILED, error=str(exc), disable_channel=exc.disable_channel, channel_problem=True
        )
    except TransientError as exc:
        return _retry_or_fail(row, settings, current, str(exc), exc.retry_after)
    except Exception as exc:  # noqa: BLE001 - one broken row must not stop the batch
        log.exception("unexpected error delivering notification %s", row.id)
        return _retry_or_fail(row, settings, current, f"unexpected error: {exc!r}", None)
    return _Outcome(row, DELIVERED, receipt=receipt)


def _retry_or_fail(
    row: _Claimed, settings: Settings, current: datetime, error: str, retry_after: float | None
) -> _Outcome:
    if row.attempts >= settings.delivery.max_attempts:
        return _Outcome(
            row,
            FAILED,
            channel_problem=True,
            error=f"gave up after {row.attempts} attempts: {error}",
        )
    delay = _backoff(settings, row.attempts, retry_after)
    return _Outcome(
        row,
        RETRYING,
        error=error,
        channel_problem=True,
        next_attempt_at=current + timedelta(seconds=delay),
    )


def _record(
    engine: Engine, token: str, outcomes: list[_Outcome], current: datetime, result: DispatchResult
) -> None:
    """Write one batch's results in one transaction (executemany per kind of change)."""
    delivered = [o for o in outcomes if o.status == DELIVERED]
    retrying = [o for o in outcomes if o.status == RETRYING]
    failed = [o for o in outcomes if o.status == FAILED]
    ids = [o.row.id for o in outcomes]
    with engine.begin() as connection:
        if delivered:
            # Delivered even if our claim was taken over meanwhile: the message did go out.
            # One statement per chunk (all share delivered_at), not one per row.
            changed = 0
            delivered_ids = [o.row.id for o in delivered]
            for start in range(0, len(delivered_ids), 1000):
                changed += connection.execute(
                    update(_table)
                    .where(
                        _table.c.id.in_(delivered_ids[start : start + 1000]),
                        _table.c.status != DELIVERED,
                    )
                    .values(
                        status=DELIVERED,
                        delivered_at=current,
                        last_error=None,
                        claimed_by=None,
                        claimed_at=None,
                    )
                ).rowcount
            result.add("delivered", len(delivered))
            if changed is not None and 0 <= changed < len(delivered):
                result.add("already_delivered", len(delivered) - changed)
                log.warning(
                    "%d notification(s) were delivered twice (same idempotency key)",
                    len(delivered) - changed,
                )
        for group, status in ((retrying, RETRYING), (failed, FAILED)):
            if not group:
                continue
            changed = connection.execute(
                update(_table)
                .where(
                    _table.c.id == bindparam("nid"),
                    _table.c.claimed_by == token,
                    _table.c.status == CLAIMED,
                )
                .values(
                    status=status,
                    next_attempt_at=bindparam("next_at"),
                    last_error=bindparam("error"),
                    claimed_by=None,
                    claimed_at=None,
                ),
                [
                    {
                        "nid": o.row.id,
                        "next_at": o.next_attempt_at or current,
                        "error": (o.error or "")[:_ERROR_MAX],
                    }
                    for o in group
                ],
            ).rowcount
            result.add(status, len(group))
            if changed is not None and 0 <= changed < len(group):
                result.add("lost_claim", len(group) - changed)
        _record_channels(connection, outcomes, current, result)
        _record_decisions(connection, ids, delivered, failed)


def _record_channels(
    connection: Any, outcomes: list[_Outcome], current: datetime, result: DispatchResult
) -> None:
    """Channel health: last success, last error, consecutive failures, disabled."""
    per_channel: dict[int, list[_Outcome]] = {}
    for outcome in outcomes:
        if outcome.status == DELIVERED or outcome.channel_problem:
            per_channel.setdefault(outcome.row.channel_id, []).append(outcome)
    if not per_channel:
        return
    rows = connection.execute(
        select(
            _channels.c.id,
            _channels.c.consecutive_failures,
            _channels.c.disabled_at,
            _channels.c.healthy,
        ).where(_channels.c.id.in_(sorted(per_channel)))
    ).all()
    updates = []
    disabled: list[tuple[int, str]] = []
    for channel_id, failures, disabled_at, healthy in rows:
        values: dict[str, Any] = {
            "cid": channel_id,
            "failures": failures or 0,
            "healthy": healthy,
            "disabled_at": disabled_at,
            "last_success_at": None,
            "last_error": None,
            "last_error_at": None,
        }
        for outcome in per_channel[channel_id]:
            if outcome.status == DELIVERED:
                values.update(
                    failures=0, last_success_at=current, healthy=values["disabled_at"] is None
                )
                continue
            values["failures"] += 1
            values["last_error"] = (outcome.error or "")[:_ERROR_MAX]
            values["last_error_at"] = current
            if outcome.status == FAILED:
                values["healthy"] = False
                if outcome.disable_channel and values["disabled_at"] is None:
                    values["disabled_at"] = current
                    result.add("channel_disabled")
                    disabled.append((channel_id, values["last_error"]))
        updates.append(values)
    for values in updates:
        changes: dict[str, Any] = {
            "consecutive_failures": values["failures"],
            "healthy": values["healthy"],
            "disabled_at": values["disabled_at"],
        }
        if values["last_success_at"] is not None:
            changes["last_success_at"] = values["last_success_at"]
        if values["last_error_at"] is not None:
            changes["last_error"] = values["last_error"]
            changes["last_error_at"] = values["last_error_at"]
        connection.execute(
            update(_channels).where(_channels.c.id == values["cid"]).values(**changes)
        )
    for channel_id, error in disabled:
        # A channel health problem people must act on: logged and kept in the audit trail.
        log.warning("channel %s disabled: %s", channel_id, error)
        connection.execute(
            AuditEvent.__table__.insert(),  # type: ignore[attr-defined]
            {
                "at": current,
                "actor": "dispatcher",
                "action": "channel_disabled",
                "object_type": "channel",
                "object_id": str(channel_id),
                "detail": {"error": error[:500]},
            },
        )


def _record_decisions(
    connection: Any, ids: list[int], delivered: list[_Outcome], failed: list[_Outcome]
) -> None:
    """AlertDecision rows: ``delivered`` / ``delivery_failed`` per alert a notification carried."""
    if not delivered and not failed:
        return
    links: dict[int, set[int]] = {}
    link_table = NotificationAlert.__table__  # type: ignore[attr-defined]
    for notification_id, alert_id in connection.execute(
        select(link_table.c.notification_id, link_table.c.alert_id).where(
            link_table.c.notification_id.in_(ids)
        )
    ).all():
        links.setdefault(notification_id, set()).add(alert_id)
    rows = []
    for outcome, decision in [(o, "delivered") for o in delivered] + [
        (o, "delivery_failed") for o in failed
    ]:
        alert_ids = links.get(outcome.row.id) or (
            {outcome.row.alert_id} if outcome.row.alert_id is not None else set()
        )
        detail: dict[str, Any] = {
            "channel_id": outcome.row.channel_id,
            "attempts": outcome.row.attempts,
            "kind": outcome.row.kind,
        }
        if outcome.receipt is not None:
            detail["receipt"] = outcome.receipt.detail[:300]
        if outcome.error:
            detail["error"] = outcome.error[:500]
        for alert_id in sorted(alert_ids):
            rows.append(
                {
                    "alert_id": alert_id,
                    "expert_id": outcome.row.expert_id,
                    "notification_id": outcome.row.id,
                    "at": utcnow(),
                    "decision": decision,
                    "detail": detail,
                }
            )
    if rows:
        connection.execute(AlertDecision.__table__.insert(), rows)  # type: ignore[attr-defined]


def _plan(
    engine: Engine,
    settings: Settings,
    *,
    now: datetime | None,
    limit: int | None,
    result: DispatchResult,
) -> None:
    """Dry run: render what is due without claiming or sending anything."""
    current = to_utc(now) if now is not None else utcnow()
    claim_timeout = timedelta(seconds=settings.delivery.claim_timeout_seconds)
    query = (
        select(Notification)
        .where(_due_condition(current, claim_timeout))
        .order_by(col(Notification.next_attempt_at), col(Notification.id))
    )
    if limit is not None:
        query = query.limit(limit)
    with Session(engine) as session:
        notifications = list(session.scalars(query).all())
        channels = _load_channels(session, settings, (n.channel_id for n in notifications))
    for notification in notifications:
        channel = channels.get(notification.channel_id)
        rendered, _ = render_for(settings, notification)
        blocked = None if channel is not None else "channel no longer exists"
        if channel is not None:
            blocked = channel.blocked
        result.planned.append(
            PlannedMessage(
                notification_id=notification.id or 0,
                idempotency_key=notification.idempotency_key,
                kind=notification.kind,
                expert_id=notification.expert_id,
                channel_id=notification.channel_id,
                channel_kind=channel.kind if channel else "?",
                target=channel.redacted if channel else "?",
                subject=rendered.subject,
                text=rendered.text,
                short=rendered.short,
                language=rendered.language,
                blocked=blocked,
            )
        )
        result.add("would_send" if blocked is None else "would_fail")
