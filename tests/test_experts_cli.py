"""`riskwatch experts add / list / remove` through the CLI runner, on both database backends."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from riskwatch.channels.webhook import secret_key_bytes
from riskwatch.cli import cli
from riskwatch.config import load_settings
from riskwatch.db.models import AuditEvent, Channel, Deployment, Expert
from riskwatch.experts import deployed_expert_ids, list_experts
from riskwatch.secretbox import decrypt
from tests.test_dispatch import SECRET, migrated, seed_areas

pytestmark = pytest.mark.db


@pytest.fixture
def engine(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Engine]:
    monkeypatch.setenv("RISKWATCH_DATABASE_URL", database_url)
    engine = migrated(load_settings())
    seed_areas(engine)
    yield engine
    engine.dispose()


def run(*args: str, input: str | None = None, allow_private: bool = False):  # noqa: ANN201
    env = {"RISKWATCH_ALLOW_PRIVATE_ADDRESSES": "true"} if allow_private else {}
    return CliRunner().invoke(cli, ["experts", *args], input=input, env=env)


def channels_of(engine: Engine, expert_id: int) -> list[Channel]:
    with Session(engine) as session:
        return list(session.exec(select(Channel).where(Channel.expert_id == expert_id)).all())


def test_add_with_email_and_generated_webhook_secret_printed_once(engine) -> None:
    result = run(
        "add",
        "Amina",
        "--email",
        "amina@agency.example",
        "--webhook",
        "https://hooks.agency.example/riskwatch",
        "--language",
        "fr",
        "--area",
        "XD07",
        "--area",
        "XD0201",
        "--from",
        "2026-01-01",
        "--to",
        "2026-12-31",
    )
    assert result.exit_code == 0, result.output
    assert "Added expert 1 (Amina) with 2 channel(s) and 2 deployment(s)" in result.output
    secret = next(line for line in result.output.splitlines() if line.startswith("whsec_"))
    assert len(secret_key_bytes(secret)) == 32
    settings = load_settings()
    stored = {c.kind: c for c in channels_of(engine, 1)}
    assert decrypt(settings, stored["webhook"].secret_encrypted) == secret
    assert decrypt(settings, stored["email"].target_encrypted) == "amina@agency.example"
    assert "amina" not in stored["email"].target_encrypted
    assert stored["email"].target_redacted == "a***@agency.example"
    with Session(engine) as session:
        expert = session.get(Expert, 1)
        assert expert.language == "fr"
        deployments = session.exec(select(Deployment).order_by(Deployment.area_pcode)).all()
        assert [(d.area_pcode, d.starts_on, d.ends_on) for d in deployments] == [
            ("XD0201", date(2026, 1, 1), date(2026, 12, 31)),
            ("XD07", date(2026, 1, 1), date(2026, 12, 31)),
        ]
        audit = session.exec(select(AuditEvent)).one()
        assert audit.action == "expert_added" and secret not in str(audit.detail)
        # A deployment to a region covers its districts, within its dates.
        assert deployed_expert_ids(session, "XD0709", on=date(2026, 6, 1)) == [1]
        assert deployed_expert_ids(session, "XD0709", on=date(2027, 1, 1)) == []
    listing = run("list")
    assert listing.exit_code == 0
    assert secret not in listing.output and "amina@" not in listing.output
    assert (
        "a***@agency.example" in listing.output
        and "https://hooks.agency.example/…" in listing.output
    )
    assert "XD07 Terubo (admin 1)" in listing.output


def test_webhook_secret_and_apprise_urls_come_from_files_or_stdin(engine, tmp_path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text(SECRET + "\n")
    urls = tmp_path / "apprise.txt"
    urls.write_text("# chat rooms\ntgram://123456789:abcdefgh_ijklmnop/12315544/\n")
    result = run(
        "add",
        "Bo",
        "--webhook",
        "https://hooks.agency.example/x",
        "--webhook-secret-file",
        str(secret_file),
        "--apprise-file",
        str(urls),
    )
    assert result.exit_code == 0, result.output
    assert "whsec_" not in result.output  # a given secret is not echoed
    stored = {c.kind: c for c in channels_of(engine, 1)}
    assert decrypt(load_settings(), stored["webhook"].secret_encrypted) == SECRET
    assert stored["apprise"].target_redacted == "tgram://***"
    piped = run(
        "add", "Cy", "--apprise-file", "-", input="mailto://user:pass@mail.agency.example\n"
    )
    assert piped.exit_code == 0, piped.output
    assert channels_of(engine, 2)[0].target_redacted == "mailto://***"
    from_env = CliRunner().invoke(
        cli,
        [
            "experts",
            "add",
            "Di",
            "--webhook",
            "https://hooks.agency.example/d",
            "--webhook-secret-file",
            "env:HOOK_SECRET",
        ],
        env={"HOOK_SECRET": SECRET},
    )
    assert from_env.exit_code == 0, from_env.output
    assert decrypt(load_settings(), channels_of(engine, 3)[0].secret_encrypted) == SECRET
    missing = run("add", "Ed", "--apprise-file", "env:NOT_SET_ANYWHERE")
    assert missing.exit_code == 1 and "NOT_SET_ANYWHERE" in missing.output


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["add", "Nobody"], 2, "at least one channel"),
        (
            ["add", "X", "--email", "x@agency.example", "--area", "XX99"],
            1,
            "unknown area pcode(s): XX99",
        ),
        (
            ["add", "X", "--email", "x@agency.example", "--focal-point", "99"],
            1,
            "unknown focal point",
        ),
        (["add", "X", "--email", "not-an-address"], 1, "not an e-mail address"),
        (["add", "X", "--email", "x@agency.example", "--language", "pt"], 2, "en, fr, es, ar"),
        (["add", "X", "--webhook", "http://127.0.0.1:9/hook"], 1, "allow_private_addresses"),
        (["add", "X", "--webhook", "ftp://example.org/x"], 1, "http:// or https://"),
        (
            [
                "add",
                "X",
                "--email",
                "x@agency.example",
                "--from",
                "2026-05-01",
                "--to",
                "2026-04-01",
            ],
            2,
            "before",
        ),
        (["remove", "42"], 1, "unknown expert id 42"),
    ],
)
def test_refusals_have_the_contract_exit_codes(engine, args, code, message) -> None:
    result = run(*args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output
    with Session(engine) as session:
        assert session.exec(select(Expert)).all() == []


def test_private_webhook_allowed_by_the_setting_and_focal_point(engine) -> None:
    focal = run("add", "Focal", "--email", "focal@agency.example")
    assert focal.exit_code == 0
    result = run(
        "add",
        "Local",
        "--webhook",
        "http://127.0.0.1:9/hook",
        "--focal-point",
        "1",
        "--area",
        "XD07",
        allow_private=True,
    )
    assert result.exit_code == 0, result.output
    with Session(engine) as session:
        views = list_experts(session)
    assert views[1].focal_point_id == 1 and views[1].focal_point_name == "Focal"
    assert "1 Focal" in run("list").output


def test_remove_deactivates_ends_deployments_and_erases_targets(engine) -> None:
    run("add", "Dee", "--email", "dee@agency.example", "--area", "XD07")
    result = run("remove", "1")
    assert result.exit_code == 0 and "Removed expert 1 (Dee)" in result.output
    with Session(engine) as session:
        assert session.get(Expert, 1).active is False
        assert deployed_expert_ids(session, "XD0709", on=date(2100, 1, 1)) == []
    channel = channels_of(engine, 1)[0]
    assert channel.disabled_at is not None and channel.target_redacted == "(removed)"
    assert decrypt(load_settings(), channel.target_encrypted) == ""
    assert "No experts yet" in run("list").output
    assert "(removed)" in run("list", "--all").output
    assert run("remove", "1").exit_code == 1
