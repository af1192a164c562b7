"""Dashboard logins: password hashing, creation, authentication, listing and removal.

Engine code (no web imports): the CLI's ``users`` commands, the demo and the dashboard's login
view all go through these functions, so that the rules (roles, user name pattern, password
length, Argon2id hashing) live in one place.

Functions take an open SQLModel session and leave committing to the caller (e.g.
``riskwatch.db.engine.session_scope``); they flush so that errors surface at the call.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from typing import Literal

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import func
from sqlmodel import Session, select

from riskwatch.db.models import Acknowledgement, Expert, User
from riskwatch.timeutil import utcnow

ROLES: tuple[str, ...] = ("coordinator", "expert", "analyst", "admin")
"""The dashboard roles, from least to most privileged in what they may change."""

MIN_PASSWORD_LENGTH = 8
# Argon2 hashes whatever it is given; the cap keeps a megabyte "password" from being a cheap
# way to burn server CPU on the login form.
MAX_PASSWORD_LENGTH = 1024

# Letters, digits and . _ @ - (so e-mail addresses work), 2 to 100 characters, starting with a
# letter or digit: safe to show, to log and to type on a command line.
USERNAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{1,99}")
_ISO3_PATTERN = re.compile(r"[A-Z]{3}")

RemovalOutcome = Literal["deleted", "deactivated"]

# argon2-cffi's defaults are RFC 9106's low-memory profile (Argon2id, 64 MiB, 3 passes).
_hasher = PasswordHasher()
_dummy_hash: str | None = None
_dummy_lock = threading.Lock()


class UserError(Exception):
    """A user operation was refused; the message is meant for the person as it is."""


def hash_password(password: str) -> str:
    """The Argon2id hash of a password (with its own random salt and parameters)."""
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; a malformed hash never matches."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether a stored hash was made with weaker parameters than the current ones."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def _dummy_password_hash() -> str:
    # Computed once, on first use, with the same parameters as real hashes: verifying against it
    # costs what verifying a real user costs, so response times do not reveal which names exist.
    global _dummy_hash
    with _dummy_lock:
        if _dummy_hash is None:
            _dummy_hash = _hasher.hash("riskwatch-dummy-password-never-matches")
        return _dummy_hash


def _check_username(username: str) -> str:
    name = username.strip()
    if not USERNAME_PATTERN.fullmatch(name):
        raise UserError(
            f"user name {username!r} is not allowed: use 2 to 100 letters, digits or . _ @ -, "
            "starting with a letter or digit"
        )
    return name


def _check_password(password: str) -> None:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise UserError(f"the password is too short: at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise UserError(f"the password is too long: at most {MAX_PASSWORD_LENGTH} characters")


def _check_role(role: str) -> str:
    if role not in ROLES:
        raise UserError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    return role


def _check_countries(countries: Iterable[str] | None) -> list[str] | None:
    if countries is None:
        return None
    checked: list[str] = []
    for country in countries:
        code = country.strip().upper()
        if not _ISO3_PATTERN.fullmatch(code):
            raise UserError(f"country {country!r} is not an ISO3 code such as HTI or SDN")
        if code not in checked:
            checked.append(code)
    # An empty list means "all countries" in the model; keep it explicit as None.
    return checked or None


def find_user(session: Session, username: str) -> User | None:
    """The user with this name (case-insensitive), or None."""
    name = username.strip().lower()
    return session.exec(select(User).where(func.lower(User.username) == name)).first()


def create_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    *,
    countries: Iterable[str] | None = None,
    expert_id: int | None = None,
    is_demo: bool = False,
) -> User:
    """Create a login; raise UserError for a bad name, role, password, country or duplicate.

    ``countries`` (ISO3) limits what the user sees; None means all countries. ``expert_id``
    links the login to a deployed expert (their alert inbox).
    """
    name = _check_username(username)
    _check_role(role)
    _check_password(password)
    country_list = _check_countries(countries)
    # Case-insensitive: "Alice" and "alice" would be two accounts nobody can tell apart.
    if find_user(session, name) is not None:
        raise UserError(f"a user named {name!r} already exists")
    if expert_id is not None and session.get(Expert, expert_id) is None:
        raise UserError(f"no expert with id {expert_id}")
    user = User(
        username=name,
        password_hash=hash_password(password),
        role=role,
        countries=country_list,
        expert_id=expert_id,
        is_demo=is_demo,
    )
    session.add(user)
    session.flush()
    return user


def set_password(session: Session, username: str, password: str) -> User:
    """Replace a user's password; their existing dashboard sessions stop being valid."""
    user = find_user(session, username)
    if user is None:
        raise UserError(f"no user named {username!r}")
    _check_password(password)
    user.password_hash = hash_password(password)
    session.add(user)
    session.flush()
    return user


def authenticate(session: Session, username: str, password: str) -> User | None:
    """The active user with this name and password, or None; records the login time.

    Unknown names are checked against a dummy hash so that they take as long as wrong passwords.
    A hash made with older parameters is replaced by a fresh one on a successful login.
    """
    user = find_user(session, username) if len(password) <= MAX_PASSWORD_LENGTH else None
    if user is None or not user.active:
        verify_password(_dummy_password_hash(), password)
        return None
    if not verify_password(user.password_hash, password):
        return None
    if needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    session.add(user)
    session.flush()
    return user


def list_users(session: Session) -> list[User]:
    """All logins, by user name."""
    return list(session.exec(select(User).order_by(func.lower(User.username))).all())


def remove_user(session: Session, username: str) -> RemovalOutcome:
    """Remove a login; raise UserError when there is none with this name.

    A user who acknowledged alerts is deactivated instead of deleted, so that the record of
    who acknowledged what stays intact; a deactivated user cannot log in.
    """
    user = find_user(session, username)
    if user is None:
        raise UserError(f"no user named {username!r}")
    referenced = session.exec(
        select(Acknowledgement.id).where(Acknowledgement.user_id == user.id).limit(1)
    ).first()
    if referenced is not None:
        user.active = False
        session.add(user)
        session.flush()
        return "deactivated"
    session.delete(user)
    session.flush()
    return "deleted"
