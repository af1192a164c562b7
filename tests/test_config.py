"""Configuration: precedence, documented settings, and one named message per bad value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from riskwatch.cli import cli
from riskwatch.config import ConfigError, iter_setting_keys, load_settings, packaged_path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_defaults_load_and_database_defaults_to_sqlite_in_data_dir(tmp_path: Path) -> None:
    settings = load_settings()
    assert settings.web.port == 8050
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'data' / 'riskwatch.db'}"


def test_precedence_cli_over_env_over_config_file_over_local_over_defaults(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "riskwatch.toml").write_text(
        "log_level = 'WARNING'\n[web]\nport = 9001\nthreads = 3\nhost = '0.0.0.0'\n"
    )
    explicit = tmp_path / "explicit.toml"
    explicit.write_text("[web]\nport = 9002\nthreads = 4\n")
    monkeypatch.setenv("RISKWATCH_WEB__PORT", "9003")

    settings = load_settings(explicit, {"log_level": "ERROR"})
    assert settings.log_level == "ERROR"  # command line beats the local file
    assert settings.web.port == 9003  # environment beats --config
    assert settings.web.threads == 4  # --config beats ./config/riskwatch.toml
    assert settings.web.host == "0.0.0.0"  # ./config/riskwatch.toml beats the defaults
    assert settings.web.session_idle_minutes == 30  # packaged default


def test_postgresql_url_gets_the_installed_driver() -> None:
    settings = load_settings(overrides={"database_url": "postgresql://u:pw@db:5432/rw"})
    assert settings.database_url.startswith("postgresql+psycopg://")


@pytest.mark.parametrize(
    ("env", "value", "key", "expected"),
    [
        ("RISKWATCH_WEB__PORT", "70000", "web.port", "less than or equal to 65535"),
        ("RISKWATCH_WEB__PORT", "eighty", "web.port", "valid integer"),
        ("RISKWATCH_LOG_LEVEL", "chatty", "log_level", "'DEBUG', 'INFO', 'WARNING' or 'ERROR'"),
        ("RISKWATCH_DATABASE_URL", "mysql://x/y", "database_url", "sqlite:/// or postgresql://"),
        ("RISKWATCH_DATABASE_URL", "not a url", "database_url", "a database URL such as"),
        ("RISKWATCH_INGEST__MAX_BAD_ROW_SHARE", "1.5", "ingest.max_bad_row_share",
         "less than or equal to 1"),
        ("RISKWATCH_INGEST__OFFSHORE_MAX_KM", "-3", "ingest.offshore_max_km",
         "greater than or equal to 0"),
        ("RISKWATCH_PRIVACY__SMALL_COUNT_THRESHOLD", "0", "privacy.small_count_threshold",
         "greater than or equal to 1"),
        ("RISKWATCH_ALLOW_PRIVATE_ADDRESSES", "perhaps", "allow_private_addresses",
         "valid boolean"),
        ("RISKWATCH_BASE_URL", "ftp://x", "base_url", "URL scheme should be 'http' or 'https'"),
        ("RISKWATCH_WEB__SESSION_IDLE_MINUTES", "0", "web.session_idle_minutes",
         "greater than or equal to 1"),
        ("RISKWATCH_WEB__SESSION_ABSOLUTE_HOURS", "-1", "web.session_absolute_hours",
         "greater than or equal to 1"),
        ("RISKWATCH_WEB__THREADS", "0", "web.threads", "greater than or equal to 1"),
    ],
)
def test_each_bad_value_gives_its_named_message_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, env: str, value: str, key: str, expected: str
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as caught:
        load_settings()
    message = str(caught.value)
    assert f"'{key}'" in message
    assert value.upper() in message.upper()
    assert env in message  # says where the value came from
    assert expected in message

    result = CliRunner().invoke(cli, ["status"])
    assert result.exit_code == 2
    assert f"'{key}'" in result.output
    assert "Traceback" not in result.output


def test_unknown_key_in_file_is_named_with_the_known_keys(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[web]\nprot = 80\n")
    result = CliRunner().invoke(cli, ["--config", str(bad), "status"])
    assert result.exit_code == 2
    assert "unknown setting 'web.prot'" in result.output
    assert str(bad) in result.output
    assert "port" in result.output


def test_missing_and_malformed_config_files_exit_2_naming_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.toml"
    result = CliRunner().invoke(cli, ["--config", str(missing), "status"])
    assert result.exit_code == 2
    assert f"configuration file not found: {missing}" in result.output

    broken = tmp_path / "broken.toml"
    broken.write_text("[web\nport = 1\n")
    result = CliRunner().invoke(cli, ["--config", str(broken), "status"])
    assert result.exit_code == 2
    assert str(broken) in result.output and "not valid TOML" in result.output


def test_every_setting_is_documented_in_the_readme() -> None:
    readme = README.read_text(encoding="utf-8")
    reference = readme.split("## Configuration reference", 1)[1]
    documented = set(re.findall(r"^\| `([a-z_.]+)` \|", reference, flags=re.MULTILINE))
    keys = {key for key, _ in iter_setting_keys()}
    assert keys - documented == set(), "settings missing from the README's reference"
    assert documented - keys == set(), "README documents settings that do not exist"
    for key, description in iter_setting_keys():
        assert description, f"setting {key} has no help text"
        env = "RISKWATCH_" + key.replace(".", "__").upper()
        assert env in reference, f"the README does not name {env}"


def test_packaged_and_repository_default_files_agree() -> None:
    repo_copy = Path(__file__).resolve().parents[1] / "config" / "riskwatch.toml"
    assert repo_copy.read_text() == packaged_path("config", "riskwatch.toml").read_text()
    # Every key of the defaults file is a real setting (the file itself validates).
    load_settings(repo_copy)


def test_the_defaults_file_lists_every_setting() -> None:
    """config/riskwatch.toml documents every setting with its default (a user's starting point)."""
    import tomllib

    repo_copy = Path(__file__).resolve().parents[1] / "config" / "riskwatch.toml"
    data = tomllib.loads(repo_copy.read_text())
    defaults = load_settings()
    for key, _ in iter_setting_keys():
        node: object = data
        for part in key.split("."):
            assert isinstance(node, dict) and part in node, f"{key} missing from {repo_copy}"
            node = node[part]
        value: object = defaults
        for part in key.split("."):
            value = getattr(value, part)
        if node != "":  # empty means "computed default" (paths, database URL)
            assert str(node).rstrip("/") == str(value).rstrip("/"), key
