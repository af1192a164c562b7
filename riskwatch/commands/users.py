"""`riskwatch users add / list / remove`: dashboard logins (CONTRACTS.md).

The password never comes from the command line (it would stay in shell history and process
lists): it is asked for at a prompt, twice, or read from the first line of standard input when
that is not a terminal (``printf '%s\\n' "$PASSWORD" | riskwatch users add ...``).
"""

from __future__ import annotations

import sys

import click
from rich.table import Table

from riskwatch.clikit import app_context, console
from riskwatch.db.engine import session_scope
from riskwatch.errors import RiskwatchError
from riskwatch.timeutil import iso_utc
from riskwatch.users import ROLES, UserError, create_user, list_users, remove_user


class UserRefused(RiskwatchError):
    """A user operation was refused (exit code 1)."""


def read_password() -> str:
    """The new password: from a hidden, confirmed prompt, or standard input's first line."""
    if sys.stdin is not None and not sys.stdin.isatty():
        line = sys.stdin.readline()
        password = line.rstrip("\r\n")
        if not password:
            raise UserRefused("no password on standard input (give it as the first line)")
        return password
    return click.prompt("Password", hide_input=True, confirmation_prompt=True)


@click.group("users")
def users() -> None:
    """Dashboard logins: roles coordinator, expert, analyst, admin; optional country scope."""


@users.command("add")
@click.argument("name")
@click.option("--role", required=True, type=click.Choice(ROLES), help="What the user may do.")
@click.option(
    "--expert",
    "expert_id",
    type=click.IntRange(min=1),
    metavar="EXPERT_ID",
    help="Link the login to an expert record (their alert inbox).",
)
@click.option(
    "--country",
    "countries",
    multiple=True,
    metavar="ISO3",
    help="Limit the user to this country (repeat for several; default: all).",
)
@click.pass_context
def add(
    ctx: click.Context, name: str, role: str, expert_id: int | None, countries: tuple[str, ...]
) -> None:
    """Add the login NAME; the password is asked for (or read from standard input)."""
    app = app_context(ctx)
    engine = app.migrated_engine()
    password = read_password()
    try:
        with session_scope(engine) as session:
            user = create_user(
                session,
                name,
                password,
                role,
                countries=list(countries) or None,
                expert_id=expert_id,
            )
            scope = ", ".join(user.countries) if user.countries else "all countries"
            username = user.username
    except UserError as exc:
        raise UserRefused(str(exc)) from None
    finally:
        engine.dispose()
    console.print(f"Added user {username} (role {role}; {scope}).", markup=False)


@users.command("list")
@click.pass_context
def list_command(ctx: click.Context) -> None:
    """All logins with role, expert link, countries, state and last login."""
    app = app_context(ctx)
    engine = app.migrated_engine()
    try:
        with session_scope(engine) as session:
            rows = [
                (
                    u.username,
                    u.role,
                    str(u.expert_id or ""),
                    ", ".join(u.countries) if u.countries else "all",
                    "active" if u.active else "deactivated",
                    "yes" if u.is_demo else "",
                    iso_utc(u.last_login_at) or "never",
                )
                for u in list_users(session)
            ]
    finally:
        engine.dispose()
    if not rows:
        console.print("No users yet. Add one with `riskwatch users add NAME --role ROLE`.")
        return
    table = Table(title="Dashboard users")
    for column in ("user", "role", "expert", "countries", "state", "demo", "last login"):
        table.add_column(column)
    for row in rows:
        table.add_row(*row)
    console.print(table)


@users.command("remove")
@click.argument("name")
@click.pass_context
def remove(ctx: click.Context, name: str) -> None:
    """Remove the login NAME (deactivated instead when it acknowledged alerts)."""
    app = app_context(ctx)
    engine = app.migrated_engine()
    try:
        with session_scope(engine) as session:
            outcome = remove_user(session, name)
    except UserError as exc:
        raise UserRefused(str(exc)) from None
    finally:
        engine.dispose()
    if outcome == "deleted":
        console.print(f"Removed user {name}.", markup=False)
    else:
        console.print(
            f"Deactivated user {name}: they acknowledged alerts, so the record stays; "
            "they can no longer log in.",
            markup=False,
        )


COMMANDS = [users]
