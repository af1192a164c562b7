"""The users page (admins only): who may log in, with which role and countries.

Read-only: logins are managed with ``riskwatch users`` (passwords never travel through the
dashboard). Password hashes are never shown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from dash import html
from sqlmodel import Session

from riskwatch.timeutil import iso_utc
from riskwatch.users import list_users


@dataclass(frozen=True)
class UserRow:
    """A login as the admin page lists it."""

    username: str
    role: str
    countries: str
    expert_id: int | None
    active: bool
    last_login_at: datetime | None


def users_page_data(session: Session) -> list[UserRow]:
    """All logins by name, without their password hashes."""
    return [
        UserRow(
            u.username,
            u.role,
            ", ".join(u.countries) if u.countries else "all",
            u.expert_id,
            u.active,
            u.last_login_at,
        )
        for u in list_users(session)
    ]


def users_page(rows: list[UserRow]) -> list[Any]:
    """The table of logins and how to change them."""
    return [
        html.H1("Users"),
        html.P(
            "Add, remove or change logins with `riskwatch users add NAME --role ROLE "
            "[--country ISO3]...` on the server.",
            className="muted",
        ),
        html.Table(
            id="users-table",
            className="data-table",
            children=[
                html.Caption("Dashboard logins"),
                html.Thead(
                    html.Tr(
                        [
                            html.Th(h, scope="col")
                            for h in ("user", "role", "countries", "expert", "state", "last login")
                        ]
                    )
                ),
                html.Tbody(
                    [
                        html.Tr(
                            [
                                html.Td(r.username),
                                html.Td(r.role),
                                html.Td(r.countries),
                                html.Td(str(r.expert_id or "")),
                                html.Td("active" if r.active else "deactivated"),
                                html.Td(iso_utc(r.last_login_at) or "never"),
                            ]
                        )
                        for r in rows
                    ]
                ),
            ],
        ),
    ]
