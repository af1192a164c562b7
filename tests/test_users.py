"""Dashboard logins: hashing, creation rules, authentication, listing and removal."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from argon2 import PasswordHasher
from shapely.geometry import MultiPolygon, box
from sqlalchemy.engine import Engine
from sqlmodel import Session

from riskwatch import users
from riskwatch.db.engine import make_engine, session_scope
from riskwatch.db.migrate import upgrade
from riskwatch.db.models import Acknowledgement, Alert, Area, Expert, User
from riskwatch.users import (
    ROLES,
    UserError,
    authenticate,
    create_user,
    hash_password,
    list_users,
    needs_rehash,
    remove_user,
    set_password,
    verify_password,
)

PASSWORD = "correct horse"

pytestmark = pytest.mark.db


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A fresh, migrated database on each backend (conftest's ``database_url``)."""
    engine = make_engine(database_url)
    upgrade(engine)
    yield engine
    engine.dispose()


def test_roles_are_the_four_of_the_design() -> None:
    assert ROLES == ("coordinator", "expert", "analyst", "admin")


def test_hash_and_verify() -> None:
    hashed = hash_password(PASSWORD)
    assert hashed.startswith("$argon2id$")
    assert PASSWORD not in hashed
    assert verify_password(hashed, PASSWORD)
    assert not verify_password(hashed, PASSWORD + "!")
    assert not verify_password("not a hash", PASSWORD)
    assert hash_password(PASSWORD) != hashed  # salted


def test_create_user_stores_a_hash_and_normalises(engine: Engine) -> None:
    with session_scope(engine) as session:
        user_id = create_user(
            session, " alice ", PASSWORD, "coordinator", countries=["hti", "SDN"]
        ).id
        assert user_id is not None
    with Session(engine) as session:
        stored = session.get(User, user_id)
        assert stored is not None
        assert stored.username == "alice"
        assert stored.role == "coordinator"
        assert stored.countries == ["HTI", "SDN"]
        assert stored.active and not stored.is_demo
        assert stored.password_hash != PASSWORD
        assert verify_password(stored.password_hash, PASSWORD)


@pytest.mark.parametrize(
    ("username", "password", "role", "message"),
    [
        ("bob", PASSWORD, "superuser", "unknown role"),
        ("b", PASSWORD, "admin", "user name"),
        ("bob smith", PASSWORD, "admin", "user name"),
        ("-bob", PASSWORD, "admin", "user name"),
        ("bob", "seven77", "admin", "too short"),
        ("bob", "x" * 2000, "admin", "too long"),
    ],
)
def test_create_user_refuses_bad_input(
    engine: Engine, username: str, password: str, role: str, message: str
) -> None:
    with session_scope(engine) as session, pytest.raises(UserError, match=message):
        create_user(session, username, password, role)


def test_minimum_password_length_is_eight(engine: Engine) -> None:
    with session_scope(engine) as session:
        assert create_user(session, "demo-user", "eight888", "expert", is_demo=True).is_demo


def test_duplicates_are_refused_case_insensitively(engine: Engine) -> None:
    with session_scope(engine) as session:
        create_user(session, "alice", PASSWORD, "analyst")
    with session_scope(engine) as session, pytest.raises(UserError, match="already exists"):
        create_user(session, "Alice", PASSWORD, "admin")


def test_bad_country_and_unknown_expert_are_refused(engine: Engine) -> None:
    with session_scope(engine) as session, pytest.raises(UserError, match="ISO3"):
        create_user(session, "carol", PASSWORD, "expert", countries=["HT"])
    with session_scope(engine) as session, pytest.raises(UserError, match="no expert"):
        create_user(session, "carol", PASSWORD, "expert", expert_id=42)
    with session_scope(engine) as session:
        expert = Expert(name="Carol")
        session.add(expert)
        session.flush()
        user = create_user(session, "carol", PASSWORD, "expert", expert_id=expert.id)
        assert user.expert_id == expert.id


def test_authenticate(engine: Engine) -> None:
    with session_scope(engine) as session:
        create_user(session, "alice", PASSWORD, "coordinator")
    with session_scope(engine) as session:
        assert authenticate(session, "alice", "wrong password") is None
        assert authenticate(session, "nobody", PASSWORD) is None
        user = authenticate(session, "ALICE", PASSWORD)
        assert user is not None and user.username == "alice"
        user_id = user.id
    with Session(engine) as session:
        stored = session.get(User, user_id)
        assert stored is not None and stored.last_login_at is not None


def test_unknown_users_cost_a_hash_verification(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Equal work for unknown and known names: response time must not tell which names exist.
    calls: list[str] = []
    real_verify = users.verify_password

    def counting_verify(password_hash: str, password: str) -> bool:
        calls.append(password_hash)
        return real_verify(password_hash, password)

    monkeypatch.setattr(users, "verify_password", counting_verify)
    with session_scope(engine) as session:
        assert authenticate(session, "nobody", PASSWORD) is None
    assert len(calls) == 1 and calls[0].startswith("$argon2id$")


def test_inactive_users_cannot_log_in(engine: Engine) -> None:
    with session_scope(engine) as session:
        create_user(session, "alice", PASSWORD, "coordinator").active = False
    with session_scope(engine) as session:
        assert authenticate(session, "alice", PASSWORD) is None


def test_weak_hashes_are_replaced_at_login(engine: Engine) -> None:
    weak = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1).hash(PASSWORD)
    assert needs_rehash(weak)
    with session_scope(engine) as session:
        user = create_user(session, "alice", PASSWORD, "coordinator")
        user.password_hash = weak
        user_id = user.id
    with session_scope(engine) as session:
        assert authenticate(session, "alice", PASSWORD) is not None
    with Session(engine) as session:
        stored = session.get(User, user_id)
        assert stored is not None
        assert stored.password_hash != weak
        assert not needs_rehash(stored.password_hash)
        assert verify_password(stored.password_hash, PASSWORD)


def test_set_password(engine: Engine) -> None:
    with session_scope(engine) as session:
        create_user(session, "alice", PASSWORD, "coordinator")
    with session_scope(engine) as session:
        set_password(session, "alice", "another secret")
    with session_scope(engine) as session:
        assert authenticate(session, "alice", PASSWORD) is None
        assert authenticate(session, "alice", "another secret") is not None
        with pytest.raises(UserError, match="too short"):
            set_password(session, "alice", "short")
        with pytest.raises(UserError, match="no user"):
            set_password(session, "nobody", "another secret")


def test_list_and_remove(engine: Engine) -> None:
    with session_scope(engine) as session:
        for name, role in (("zoe", "admin"), ("Bob", "analyst"), ("alice", "coordinator")):
            create_user(session, name, PASSWORD, role)
    with Session(engine) as session:
        assert [user.username for user in list_users(session)] == ["alice", "Bob", "zoe"]
    with session_scope(engine) as session:
        assert remove_user(session, "bob") == "deleted"
    with session_scope(engine) as session, pytest.raises(UserError, match="no user"):
        remove_user(session, "bob")
    with Session(engine) as session:
        assert [user.username for user in list_users(session)] == ["alice", "zoe"]


def test_remove_keeps_users_who_acknowledged_alerts(engine: Engine) -> None:
    with session_scope(engine) as session:
        user = create_user(session, "alice", PASSWORD, "expert")
        session.add(Area(pcode="TST", name="Testland", admin_level=0, country_iso3="TST",
                         geometry=MultiPolygon([box(0, 0, 1, 1)])))
        session.flush()
        alert = Alert(fingerprint="rule:TST", rule="rule", area_pcode="TST", severity="high")
        session.add(alert)
        session.flush()
        session.add(Acknowledgement(alert_id=alert.id, user_id=user.id))
        user_id = user.id
    with session_scope(engine) as session:
        assert remove_user(session, "alice") == "deactivated"
    with session_scope(engine) as session:
        stored = session.get(User, user_id)
        assert stored is not None and not stored.active
        assert authenticate(session, "alice", PASSWORD) is None
