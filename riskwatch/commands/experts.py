"""`riskwatch experts add NAME ... / list / remove EXPERT_ID` (see CONTRACTS.md).

Secrets never come from argv: a webhook secret comes from ``--webhook-secret-file`` (or is
generated and printed once), Apprise URLs (they carry tokens) from ``--apprise-file``; ``-``
reads either from standard input (a pipe or a prompt).
"""

from __future__ import annotations

import os
import sys
from datetime import date, datetime
from pathlib import Path

import click
from rich.table import Table

from riskwatch.clikit import app_context, console
from riskwatch.errors import UsageError
from riskwatch.experts import (
    ChannelSpec,
    ExpertError,
    add_expert,
    list_experts,
    read_apprise_urls,
    remove_expert,
)
from riskwatch.timeutil import iso_utc


def _read_secret_source(path: str, what: str) -> str:
    """The text of ``path``; ``-`` is standard input (prompted when it is a terminal) and
    ``env:NAME`` the environment variable NAME."""
    if path.startswith("env:"):
        name = path[4:]
        value = os.environ.get(name)
        if not value:
            raise ExpertError(f"environment variable {name} (for the {what}) is not set")
        return value
    if path == "-":
        if sys.stdin.isatty():
            return click.prompt(what, hide_input=True)
        return sys.stdin.read()
    try:
        return Path(path).expanduser().read_text(encoding="utf-8")
    except OSError as exc:
        raise ExpertError(f"cannot read {what} from {path}: {exc.strerror}") from None


def _day(value: datetime | None) -> date | None:
    return value.date() if value is not None else None


@click.group("experts")
def experts() -> None:
    """Experts who receive alerts: channels, deployments, focal points."""


@experts.command("add")
@click.argument("name")
@click.option("--email", "emails", multiple=True, help="E-mail address (repeatable).")
@click.option(
    "--webhook", "webhook", default=None, help="Webhook URL (Standard Webhooks signatures)."
)
@click.option(
    "--webhook-secret-file",
    default=None,
    help="File holding the whsec_ secret ('-': standard input, 'env:NAME': an environment "
    "variable); default: generated and printed once.",
)
@click.option(
    "--apprise-file",
    default=None,
    help="File with Apprise URLs, one per line ('-': standard input, 'env:NAME': an "
    "environment variable). URLs carry tokens, so they are never given on the command line.",
)
@click.option(
    "--language", default="en", show_default=True, help="Message language: en, fr, es or ar."
)
@click.option(
    "--area",
    "areas",
    multiple=True,
    help="Deployment area pcode, any admin level, covers its sub-areas (repeatable).",
)
@click.option(
    "--from",
    "starts_on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="First day of the deployment (YYYY-MM-DD).",
)
@click.option(
    "--to",
    "ends_on",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Last day of the deployment (YYYY-MM-DD).",
)
@click.option(
    "--focal-point",
    "focal_point",
    type=int,
    default=None,
    help="Expert id of the regional focal point who gets escalations.",
)
@click.pass_context
def add(
    ctx: click.Context,
    name: str,
    emails: tuple[str, ...],
    webhook: str | None,
    webhook_secret_file: str | None,
    apprise_file: str | None,
    language: str,
    areas: tuple[str, ...],
    starts_on: datetime | None,
    ends_on: datetime | None,
    focal_point: int | None,
) -> None:
    """Add an expert with at least one channel."""
    app = app_context(ctx)
    if webhook_secret_file and not webhook:
        raise UsageError("--webhook-secret-file needs --webhook")
    channels = [ChannelSpec("email", address) for address in emails]
    if webhook:
        secret = None
        if webhook_secret_file:
            secret = _read_secret_source(webhook_secret_file, "webhook secret").strip()
        channels.append(ChannelSpec("webhook", webhook, secret))
    if apprise_file:
        urls = read_apprise_urls(_read_secret_source(apprise_file, "Apprise URL"))
        if not urls:
            raise ExpertError(f"no Apprise URL found in {apprise_file}")
        channels.extend(ChannelSpec("apprise", url) for url in urls)
    added = add_expert(
        app.migrated_engine(),
        app.settings,
        name,
        channels=channels,
        language=language,
        areas=list(areas),
        starts_on=_day(starts_on),
        ends_on=_day(ends_on),
        focal_point_id=focal_point,
    )
    console.print(
        f"Added expert {added.expert_id} ({name}) with {len(added.channel_ids)} "
        f"channel(s) and {len(added.deployment_ids)} deployment(s).",
        markup=False,
    )
    if added.generated_secret:
        console.print(
            "Webhook signing secret (shown only now; configure it in the receiver):", markup=False
        )
        console.print(added.generated_secret, markup=False)


@experts.command("list")
@click.option("--all", "include_inactive", is_flag=True, help="Include removed experts.")
@click.pass_context
def list_command(ctx: click.Context, include_inactive: bool) -> None:
    """Experts with their channels (redacted), channel health and deployments."""
    from sqlmodel import Session

    app = app_context(ctx)
    with Session(app.migrated_engine()) as session:
        views = list_experts(session, include_inactive=include_inactive)
    if not views:
        console.print(
            "No experts yet: add one with `riskwatch experts add NAME --email ...`.", markup=False
        )
        return
    table = Table(title="Experts")
    for column in ("id", "name", "language", "focal point", "channels", "deployments"):
        table.add_column(column)
    for view in views:
        channel_lines = []
        for channel in view.channels:
            if channel.disabled_at is not None:
                health = f"DISABLED since {iso_utc(channel.disabled_at)}"
            elif not channel.healthy:
                health = "UNHEALTHY"
            else:
                health = "ok"
            line = f"#{channel.id} {channel.kind} {channel.target} [{health}]"
            if channel.last_error and (channel.disabled_at or not channel.healthy):
                line += f" last error {iso_utc(channel.last_error_at)}: {channel.last_error}"
            elif channel.last_success_at:
                line += f" last success {iso_utc(channel.last_success_at)}"
            channel_lines.append(line)
        deployment_lines = [
            f"{d.area_pcode} {d.area_name} (admin {d.admin_level})"
            + (f" {d.starts_on or '…'} to {d.ends_on or '…'}" if d.starts_on or d.ends_on else "")
            for d in view.deployments
        ]
        focal = (
            f"{view.focal_point_id} {view.focal_point_name or ''}".strip()
            if view.focal_point_id
            else ""
        )
        table.add_row(
            str(view.id),
            view.name + ("" if view.active else " (removed)"),
            view.language,
            focal,
            "\n".join(channel_lines),
            "\n".join(deployment_lines) or "-",
        )
    console.print(table)


@experts.command("remove")
@click.argument("expert_id", type=int)
@click.pass_context
def remove(ctx: click.Context, expert_id: int) -> None:
    """Remove an expert: deployments end, channels are disabled and their targets erased."""
    app = app_context(ctx)
    name = remove_expert(app.migrated_engine(), app.settings, expert_id)
    console.print(f"Removed expert {expert_id} ({name}).", markup=False)


COMMANDS = [experts]
