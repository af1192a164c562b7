"""`riskwatch alerts ...`: list, show, ack, approve, silence (CONTRACTS.md), evaluate, rules."""

from __future__ import annotations

import getpass
import json
from datetime import datetime
from typing import Any

import click
from rich.table import Table
from sqlmodel import Session

from riskwatch.alerts.ack import FEEDBACK, acknowledge
from riskwatch.alerts.evaluate import evaluate_alerts
from riskwatch.alerts.queries import STATES, alert_detail, list_alerts
from riskwatch.alerts.review import approve
from riskwatch.alerts.rules import load_rules
from riskwatch.alerts.silences import create_silence
from riskwatch.clikit import app_context, console
from riskwatch.commands.score import DateTimeParam
from riskwatch.timeutil import iso_utc


def _os_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (containers)
        return "unknown"


_BY = click.option(
    "--by",
    "actor",
    default=None,
    help="Your name for the audit trail (default: the operating-system user).",
)


@click.group("alerts")
def alerts() -> None:
    """Alerts: list, explain, acknowledge, approve (review mode), silence."""


@alerts.command("list")
@click.option("--state", type=click.Choice(STATES), default=None, help="Only this state.")
@click.option("--country", "countries", multiple=True, help="Only this country (ISO3).")
@click.option(
    "--expert",
    "expert_id",
    type=int,
    default=None,
    help="Only alerts in this expert's active deployments.",
)
@click.pass_context
def list_command(
    ctx: click.Context, state: str | None, countries: tuple[str, ...], expert_id: int | None
) -> None:
    """Alerts, most recently changed first."""
    engine = app_context(ctx).migrated_engine()
    with Session(engine) as session:
        rows = list_alerts(
            session, state=state, countries=[c.upper() for c in countries], expert_id=expert_id
        )
    if not rows:
        console.print("No alerts" + (f" in state {state}" if state else "") + ".")
        return
    table = Table(
        "id",
        "rule",
        "pcode",
        "area",
        "severity",
        "state",
        "review",
        "since",
        "acknowledged",
        "what",
    )
    for row in rows:
        table.add_row(
            str(row.id),
            row.rule,
            row.pcode,
            row.name or "",
            row.severity,
            row.state,
            row.review_state or "",
            row.since,
            f"{iso_utc(row.acknowledged_at)} {row.acknowledged_by or ''}".strip(),
            row.summary or "",
        )
    console.print(table)
    console.print(f"{len(rows)} alert(s)")


@alerts.command("show")
@click.argument("alert_id", type=int)
@click.pass_context
def show(ctx: click.Context, alert_id: int) -> None:
    """An alert's explanation and its decision history."""
    engine = app_context(ctx).migrated_engine()
    with Session(engine) as session:
        detail = alert_detail(session, alert_id)
    row = detail.alert
    console.print(
        f"Alert {row.id}: {row.rule} at {row.pcode} - {row.severity}, {row.state}"
        + (f", review {row.review_state}" if row.review_state else ""),
        markup=False,
    )
    for line in detail.lines:
        console.print("  " + line, markup=False)
    console.print(
        f"  First seen {iso_utc(row.first_seen)}, last seen {iso_utc(row.last_seen)}"
        + (
            f", acknowledged {iso_utc(row.acknowledged_at)} by {row.acknowledged_by}"
            if row.acknowledged_at
            else ""
        ),
        markup=False,
    )
    console.print("Decisions:")
    for item in detail.decisions:
        who = f" expert {item['expert_id']}" if item["expert_id"] is not None else ""
        note = f" notification {item['notification_id']}" if item["notification_id"] else ""
        console.print(
            f"  {iso_utc(item['at'])} {item['decision']}{who}{note} {_detail(item['detail'])}",
            markup=False,
        )
    if detail.acknowledgements:
        console.print("Acknowledgements:")
        for ack in detail.acknowledgements:
            console.print(
                f"  {iso_utc(ack['at'])} {ack['by']} via {ack['via']}"
                f" feedback={ack['feedback'] or '-'}"
                + (f" comment: {ack['comment']}" if ack["comment"] else ""),
                markup=False,
            )
    if detail.notifications:
        console.print("Notifications:")
        for n in detail.notifications:
            console.print(
                f"  {n['id']} {n['kind']} to expert {n['expert_id']} via "
                f"{n['channel']} (channel {n['channel_id']}): {n['status']}, "
                f"{n['attempts']} attempt(s)",
                markup=False,
            )


def _detail(detail: dict[str, Any]) -> str:
    return json.dumps(detail, sort_keys=True, default=str) if detail else ""


@alerts.command("ack")
@click.argument("alert_id", type=int)
@click.option("--comment", default=None, help="A note for analysts.")
@click.option("--feedback", type=click.Choice(FEEDBACK), default=None, help="Was the alert useful?")
@click.option(
    "--expert", "expert_id", type=int, default=None, help="Acknowledge as this expert (by id)."
)
@_BY
@click.pass_context
def ack(
    ctx: click.Context,
    alert_id: int,
    comment: str | None,
    feedback: str | None,
    expert_id: int | None,
    actor: str | None,
) -> None:
    """Acknowledge an alert (stops repeats and escalation of this episode)."""
    engine = app_context(ctx).migrated_engine()
    who = actor or _os_user()
    record = acknowledge(
        engine,
        alert_id,
        expert_id=expert_id,
        feedback=feedback,
        comment=comment,
        via="cli",
        actor=who,
    )
    console.print(
        f"Alert {alert_id} acknowledged by {who} at {iso_utc(record.at)}"
        + (f" (feedback: {feedback})" if feedback else ""),
        markup=False,
    )


@alerts.command("approve")
@click.argument("alert_id", type=int)
@_BY
@click.pass_context
def approve_command(ctx: click.Context, alert_id: int, actor: str | None) -> None:
    """Approve an alert awaiting review: its notifications are queued now."""
    app = app_context(ctx)
    engine = app.migrated_engine()
    result = approve(engine, alert_id, actor=actor or _os_user(), settings=app.settings)
    console.print(
        f"Alert {alert_id} approved; {len(result.notification_ids)} notification(s) queued."
    )


@alerts.command("silence")
@click.option("--area", "area_pcode", required=True, help="Area pcode (covers its sub-areas).")
@click.option("--rule", default=None, help="Only this rule (default: every rule).")
@click.option(
    "--until",
    "until",
    type=DateTimeParam(),
    required=True,
    help="When the silence ends (ISO 8601; UTC without a zone).",
)
@click.option("--reason", required=True, help="Why (kept in the audit trail).")
@_BY
@click.pass_context
def silence(
    ctx: click.Context,
    area_pcode: str,
    rule: str | None,
    until: datetime,
    reason: str,
    actor: str | None,
) -> None:
    """Silence notifications for an area and its sub-areas until a time."""
    app = app_context(ctx)
    engine = app.migrated_engine()
    rules = load_rules(app.settings)
    record = create_silence(
        engine,
        area_pcode=area_pcode,
        rule=rule,
        ends_at=until,
        reason=reason,
        author=actor or _os_user(),
        known_rules=sorted(rules.rules),
    )
    console.print(
        f"Silence {record.id}: {area_pcode}"
        + (f" ({rule})" if rule else "")
        + f" until {iso_utc(record.ends_at)} by {record.author}",
        markup=False,
    )


@alerts.command("evaluate")
@click.option("--dry-run", is_flag=True, help="Compute and show, write nothing.")
@click.pass_context
def evaluate(ctx: click.Context, dry_run: bool) -> None:
    """Evaluate the rules against the latest score run and queue notifications."""
    app = app_context(ctx)
    engine = app.migrated_engine()
    result = evaluate_alerts(engine, app.settings, dry_run=dry_run)
    counts = ", ".join(f"{k} {v}" for k, v in sorted(result.counts.items()))
    prefix = "Dry run (nothing written): " if dry_run else ""
    console.print(f"{prefix}score run {result.run_id or 'none'}; {counts}", markup=False)
    for plan in result.planned:
        console.print(
            f"  {'would queue' if dry_run else 'queued'} {plan.kind} to expert "
            f"{plan.expert_id} via {plan.channel_kind} (channel {plan.channel_id}), "
            f"group {plan.group_key}: alerts {plan.alert_ids}",
            markup=False,
        )


@alerts.command("rules")
@click.pass_context
def rules_command(ctx: click.Context) -> None:
    """The alert rules and timings riskwatch reads (alerts.rules_file)."""
    rules = load_rules(app_context(ctx).settings)
    console.print(f"Rules file: {rules.source}", markup=False)
    console.print(f"Lifecycle: {rules.lifecycle.model_dump()}", markup=False)
    console.print(
        f"Digest: {rules.digest.model_dump()}; review countries: "
        f"{', '.join(rules.review.countries) or 'none'}",
        markup=False,
    )
    for rule_id, rule in rules.rules.items():
        console.print(f"  {rule_id}: {rule.model_dump()}", markup=False)


COMMANDS = [alerts]
