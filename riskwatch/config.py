"""Settings: packaged defaults < ./config/riskwatch.toml < --config file < RISKWATCH_* env < CLI.

A bad value stops the program before it does anything: :func:`load_settings` raises
:class:`ConfigError` with one line per bad key, naming the key, the value given, where it came
from and what is allowed; the CLI prints it and exits with code 2.
"""

from __future__ import annotations

import contextvars
import os
import tomllib
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import platformdirs
from pydantic import (
    AnyHttpUrl,
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

ENV_PREFIX = "RISKWATCH_"
ENV_NESTED_DELIMITER = "__"
LOCAL_CONFIG = Path("config") / "riskwatch.toml"


class ConfigError(Exception):
    """The configuration is unusable; the message is meant for the user as it is."""


class WebSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = Field("127.0.0.1", description="Address `riskwatch serve` listens on.")
    port: int = Field(8050, ge=1, le=65535, description="Port of `riskwatch serve`.")
    session_idle_minutes: int = Field(
        30, ge=1, le=24 * 60, description="A session ends after this many idle minutes."
    )
    session_absolute_hours: int = Field(
        12, ge=1, le=24 * 30, description="A session ends this many hours after login."
    )
    threads: int = Field(8, ge=1, le=256, description="Threads of the WSGI server (waitress).")


class IngestSettings(BaseModel):
    """How files, URLs and API queries are ingested (riskwatch.ingest, riskwatch.fetch)."""

    model_config = ConfigDict(extra="forbid")

    max_bad_row_share: float = Field(
        0.05, ge=0.0, le=1.0,
        description="Share of a file's bad rows above which the file is refused whole.",
    )
    offshore_max_km: float = Field(
        10.0, ge=0.0, le=500.0,
        description="Events outside every polygon go to the nearest area within this many km.",
    )
    sources_file: Path | None = Field(
        None,
        description="Declared sources (TOML); empty: ./config/sources.toml, else the packaged one.",
    )
    url_timeout_seconds: float = Field(
        60.0, gt=0.0, le=3600.0,
        description="Longest wait for a URL source: each network wait and the whole download.",
    )
    url_max_bytes: int = Field(
        200_000_000, ge=1,
        description="Largest file downloaded from a URL source, in bytes.",
    )

    @field_validator("sources_file", mode="before")
    @classmethod
    def _empty_path_is_default(cls, value: Any) -> Any:
        return None if value in ("", None) else value

    @property
    def resolved_sources_file(self) -> Path:
        """The declared-sources file: the setting, else ./config/sources.toml, else packaged."""
        if self.sources_file is not None:
            return self.sources_file.expanduser()
        local = Path("config") / "sources.toml"
        if local.is_file():
            return local
        return packaged_path("config", "sources.toml")


class PrivacySettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    small_count_threshold: int = Field(
        5, ge=1, le=1000,
        description="Counts of sensitive variables below this are suppressed wherever shown.",
    )


class ScoringSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile: str = Field(
        "default", pattern=r"^[a-z][a-z0-9_]*$",
        description="Profile `riskwatch score` uses without --profile (indicators/profiles/).",
    )
    max_age_days: int = Field(
        365, ge=1, le=36500,
        description="An input older than this at a scoring period is not used (unless the "
                    "indicator sets its own max_age_days).",
    )
    denominator_max_age_days: int = Field(
        1826, ge=1, le=36500,
        description="Maximum age of a denominator such as population.",
    )
    inherited_discount: float = Field(
        0.5, ge=0.0, le=1.0,
        description="Weight of a value inherited from a coarser level in the reliability.",
    )
    min_indicators: int = Field(
        2, ge=1, le=1000,
        description="Fewer indicators with data than this: insufficient_data.",
    )
    min_weight_share: float = Field(
        0.15, ge=0.0, le=1.0,
        description="Less of the profile's weight with data than this: insufficient_data.",
    )
    period_variables: list[str] = Field(
        default_factory=lambda: ["idps"], min_length=1,
        description="Variables whose periods are the scoring periods (DTM reporting dates).",
    )
    assessment_preference: list[str] = Field(
        default_factory=lambda: ["BA", "SA", "ETT"], min_length=1,
        description="DTM assessment types in order of preference per area and period.",
    )
    extra_variables: list[str] = Field(
        default_factory=list,
        description="Variables that configured mappings produce, accepted as indicator inputs.",
    )


class DeliverySettings(BaseModel):
    """How the outbox is delivered (riskwatch.dispatch) and how alert links are signed."""

    model_config = ConfigDict(extra="forbid")

    max_attempts: int = Field(
        8, ge=1, le=100,
        description="Attempts per notification before it is marked failed (transient errors).",
    )
    backoff_base_seconds: float = Field(
        30.0, ge=0.0, le=86400.0,
        description="First retry delay; doubled after each failed attempt, with jitter.",
    )
    backoff_max_seconds: float = Field(
        3600.0, ge=0.0, le=7 * 86400.0,
        description="Longest delay between two attempts of one notification.",
    )
    claim_timeout_seconds: float = Field(
        300.0, gt=0.0, le=86400.0,
        description="A notification claimed longer ago than this (its dispatcher died) is "
                    "claimed again.",
    )
    batch_size: int = Field(
        100, ge=1, le=10000, description="Notifications one dispatcher claims at a time."
    )
    concurrency: int = Field(
        4, ge=1, le=64,
        description="Messages one dispatcher sends at once (parallel connections).",
    )
    http_timeout_seconds: float = Field(
        10.0, gt=0.0, le=600.0, description="Longest wait for a webhook or Apprise request."
    )
    ack_link_ttl_hours: int = Field(
        168, ge=1, le=24 * 365,
        description="Acknowledgement links in messages expire this many hours after the "
                    "notification was created.",
    )
    encryption_key_file: Path | None = Field(
        None,
        description="Key that encrypts channel targets and secrets; empty: secret.key in "
                    "data_dir, generated on first use (mode 0600).",
    )

    @field_validator("encryption_key_file", mode="before")
    @classmethod
    def _empty_path_is_default(cls, value: Any) -> Any:
        return None if value in ("", None) else value


class SmtpSettings(BaseModel):
    """The SMTP relay e-mail alerts go through (riskwatch.channels.email)."""

    model_config = ConfigDict(extra="forbid")

    host: str = Field("", description="SMTP server; empty: e-mail channels cannot send.")
    port: int = Field(587, ge=1, le=65535, description="SMTP port (587 STARTTLS, 465 TLS).")
    security: Literal["starttls", "tls", "none"] = Field(
        "starttls", description="starttls, tls (implicit TLS) or none (loopback relays only)."
    )
    username: str = Field("", description="SMTP login; empty: no authentication.")
    password: SecretStr = Field(
        SecretStr(""),
        description="SMTP password; set it with RISKWATCH_SMTP__PASSWORD or password_file.",
    )
    password_file: Path | None = Field(
        None, description="File holding the SMTP password (read when password is empty)."
    )
    from_address: str = Field(
        "riskwatch@localhost", description="Sender address of alert e-mails."
    )
    timeout_seconds: float = Field(
        30.0, gt=0.0, le=600.0, description="Longest wait for the SMTP server."
    )

    @field_validator("password_file", mode="before")
    @classmethod
    def _empty_path_is_default(cls, value: Any) -> Any:
        return None if value in ("", None) else value


class SchedulerSettings(BaseModel):
    """`riskwatch scheduler` and `riskwatch run`: job intervals, the lease, liveness, retention."""

    model_config = ConfigDict(extra="forbid")

    heartbeat_seconds: int = Field(
        10, ge=1, le=30,
        description="How often the scheduler renews its lease (less than lease_seconds).",
    )
    lease_seconds: int = Field(
        45, ge=5, le=60,
        description="The scheduler lease lasts this long without a heartbeat (at most 60 s): "
                    "a dead scheduler is replaced within this time.",
    )
    pipeline_interval_seconds: int = Field(
        900, ge=1, le=7 * 24 * 3600,
        description="How often the pipeline runs: due sources, score when data changed, alerts.",
    )
    dispatch_interval_seconds: int = Field(
        60, ge=1, le=3600, description="How often due notifications are sent (and retried).",
    )
    escalation_interval_seconds: int = Field(
        900, ge=1, le=7 * 24 * 3600,
        description="How often unacknowledged alerts are checked for escalation.",
    )
    digest_schedule: str = Field(
        "0 7 * * *", description="When the daily digest is queued (cron, in digest_timezone).",
    )
    digest_timezone: str = Field("UTC", description="Time zone of digest_schedule (IANA name).")
    retention_days: int = Field(
        180, ge=1, le=36500,
        description="Job runs and delivered messages' contents older than this are deleted "
                    "(alerts, acknowledgements, observations and score runs are kept).",
    )
    ping_url: str = Field(
        "", description="Optional URL fetched (GET) after each successful cycle, for your own "
                        "dead man's switch monitoring; empty: none.",
    )
    shutdown_grace_seconds: int = Field(
        30, ge=0, le=3600,
        description="On SIGTERM/SIGINT, how long the running step may take to finish before "
                    "it is rolled back.",
    )

    @field_validator("lease_seconds")
    @classmethod
    def _lease_longer_than_heartbeat(cls, value: int, info: Any) -> int:
        heartbeat = info.data.get("heartbeat_seconds")
        if heartbeat is not None and value <= heartbeat:
            raise ValueError(f"more seconds than heartbeat_seconds ({heartbeat})")
        return value

    @field_validator("digest_schedule")
    @classmethod
    def _check_cron(cls, value: str) -> str:
        from riskwatch.crontab import crontab_trigger

        try:
            crontab_trigger(value, timezone="UTC")
        except ValueError as exc:
            raise ValueError(f"a cron expression such as \"0 7 * * *\" ({exc})") from None
        return value

    @field_validator("digest_timezone")
    @classmethod
    def _check_timezone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("an IANA time zone name such as UTC or Europe/Paris") from None
        return value

    @field_validator("ping_url")
    @classmethod
    def _check_ping_url(cls, value: str) -> str:
        value = value.strip()
        if value and not value.lower().startswith(("http://", "https://")):
            raise ValueError("an http(s) URL, or empty")
        return value


class AlertsSettings(BaseModel):
    """Where the alert rules live; thresholds and timings are in that file (alerts.toml)."""

    model_config = ConfigDict(extra="forbid")

    rules_file: Path | None = Field(
        None,
        description="Alert rules (TOML); empty: ./config/alerts.toml, else the packaged one.",
    )

    @field_validator("rules_file", mode="before")
    @classmethod
    def _empty_path_is_default(cls, value: Any) -> Any:
        return None if value in ("", None) else value

    @property
    def resolved_rules_file(self) -> Path:
        """The rules file: the setting, else ./config/alerts.toml, else the packaged one."""
        if self.rules_file is not None:
            return self.rules_file.expanduser()
        local = Path("config") / "alerts.toml"
        if local.is_file():
            return local
        return packaged_path("config", "alerts.toml")


class MapSettings(BaseModel):
    """The dashboard map: optional base-map tiles (none by default: the map needs no network)."""

    model_config = ConfigDict(extra="forbid")

    tile_url: str = Field(
        "",
        description="Base-map tile URL template ({z}/{x}/{y}); empty: no base map, boundaries "
        "and labels only.",
    )
    tile_attribution: str = Field(
        "", description="Attribution of the base-map tiles, shown on the map (required by most "
        "tile providers).",
    )


class Settings(BaseSettings):
    """All of riskwatch's settings. Field descriptions are the help text the README repeats."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_NESTED_DELIMITER,
        extra="forbid",
        validate_default=True,
    )

    database_url: str = Field(
        "", description="SQLAlchemy URL of the database; empty: a SQLite file in data_dir."
    )
    data_dir: Path | None = Field(
        None, description="Folder for the SQLite database, generated keys and captured messages."
    )
    indicators_dir: Path | None = Field(
        None, description="Indicator catalog folder; empty: ./indicators, else the packaged one."
    )
    allow_private_addresses: bool = Field(
        False, description="Allow outbound URLs to loopback or private addresses."
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Log level."
    )
    base_url: AnyHttpUrl = Field(
        "http://127.0.0.1:8050", description="Public base URL of the dashboard, for alert links."
    )
    web: WebSettings = Field(default_factory=WebSettings)
    ingest: IngestSettings = Field(default_factory=IngestSettings)
    privacy: PrivacySettings = Field(default_factory=PrivacySettings)
    scoring: ScoringSettings = Field(default_factory=ScoringSettings)
    scheduler: SchedulerSettings = Field(default_factory=SchedulerSettings)
    delivery: DeliverySettings = Field(default_factory=DeliverySettings)
    smtp: SmtpSettings = Field(default_factory=SmtpSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)
    map: MapSettings = Field(default_factory=MapSettings)

    @field_validator("data_dir", "indicators_dir", mode="before")
    @classmethod
    def _empty_path_is_default(cls, value: Any) -> Any:
        return None if value in ("", None) else value

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_log_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("database_url")
    @classmethod
    def _check_database_url(cls, value: str) -> str:
        if not value:
            return value
        try:
            url = make_url(value)
        except ArgumentError as exc:
            raise ValueError("a database URL such as sqlite:///path/riskwatch.db or "
                             "postgresql+psycopg://user@host:5432/riskwatch") from exc
        if url.get_backend_name() not in ("sqlite", "postgresql"):
            raise ValueError("a sqlite:/// or postgresql:// URL (no other database is supported)")
        if url.get_backend_name() == "postgresql" and url.drivername == "postgresql":
            # riskwatch installs psycopg 3; plain postgresql:// would ask for psycopg2.
            value = url.set(drivername="postgresql+psycopg").render_as_string(hide_password=False)
        return value

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, _FileLayersSource(settings_cls))

    # Derived locations -------------------------------------------------------------------------
    @property
    def resolved_data_dir(self) -> Path:
        """The data folder (created on demand by the code that writes there)."""
        if self.data_dir is not None:
            return self.data_dir.expanduser()
        return Path(platformdirs.user_data_dir("riskwatch", appauthor=False))

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.resolved_data_dir / 'riskwatch.db'}"

    @property
    def resolved_indicators_dir(self) -> Path:
        if self.indicators_dir is not None:
            return self.indicators_dir.expanduser()
        local = Path("indicators")
        if local.is_dir():
            return local
        return packaged_path("indicators")


# The merged TOML layers for the settings being loaded (set by load_settings, read by the source).
_file_layers: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "riskwatch_file_layers", default=None
)


class _FileLayersSource(PydanticBaseSettingsSource):
    """The merged configuration files, below the environment and the command line."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return (_file_layers.get() or {}).get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_file_layers.get() or {})


def packaged_path(*parts: str) -> Path:
    """A file or folder of the defaults shipped inside the package (works from a wheel install)."""
    return Path(str(resources.files("riskwatch").joinpath("defaults", *parts)))


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML configuration file, or raise ConfigError naming the file and the problem."""
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except IsADirectoryError:
        raise ConfigError(f"configuration path is a folder, not a file: {path}") from None
    except PermissionError:
        raise ConfigError(f"configuration file is not readable: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"configuration file {path} is not valid TOML: {exc}") from None
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None


def _deep_merge(base: dict[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _nested_get(data: Mapping[str, Any], keys: tuple[str, ...]) -> bool:
    current: Any = data
    for key in keys:
        if not isinstance(current, Mapping) or key not in current:
            return False
        current = current[key]
    return True


def load_settings(
    config_file: Path | str | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    cwd: Path | None = None,
) -> Settings:
    """Load and validate the settings with riskwatch's precedence; raise ConfigError if bad.

    ``overrides`` are command-line values (nested dicts for sections), the highest layer.
    """
    workdir = cwd or Path.cwd()
    layers: list[tuple[str, dict[str, Any]]] = [
        ("packaged defaults", read_toml(packaged_path("config", "riskwatch.toml")))
    ]
    local = workdir / LOCAL_CONFIG
    if local.is_file():
        layers.append((str(local), read_toml(local)))
    if config_file is not None:
        path = Path(config_file)
        layers.append((str(path), read_toml(path)))

    merged: dict[str, Any] = {}
    for _, layer in layers:
        merged = _deep_merge(merged, layer)

    token = _file_layers.set(merged)
    try:
        return Settings(**dict(overrides or {}))
    except ValidationError as exc:
        raise ConfigError(_describe_errors(exc, layers, overrides or {})) from None
    finally:
        _file_layers.reset(token)


def _describe_errors(
    exc: ValidationError,
    layers: list[tuple[str, dict[str, Any]]],
    overrides: Mapping[str, Any],
) -> str:
    lines = []
    for error in exc.errors():
        loc = tuple(str(part) for part in error["loc"])
        key = ".".join(loc)
        origin = _origin_of(loc, layers, overrides)
        if error["type"] == "extra_forbidden":
            allowed = _allowed_keys(loc[:-1])
            lines.append(
                f"configuration error: unknown setting '{key}' ({origin}); "
                f"known settings here: {', '.join(allowed)}"
            )
            continue
        given = error.get("input")
        message = error["msg"]
        if message.startswith("Value error, "):
            message = "expected " + message.removeprefix("Value error, ")
        lines.append(
            f"configuration error: '{key}' = {given!r} ({origin}) is not allowed: {message}"
        )
    return "\n".join(lines)


def _origin_of(
    loc: tuple[str, ...], layers: list[tuple[str, dict[str, Any]]], overrides: Mapping[str, Any]
) -> str:
    if _nested_get(overrides, loc):
        return "from the command line"
    env_name = ENV_PREFIX + ENV_NESTED_DELIMITER.join(loc).upper()
    if env_name in {name.upper() for name in os.environ}:
        return f"from environment variable {env_name}"
    for name, layer in reversed(layers):
        if _nested_get(layer, loc):
            return f"from {name}"
    return "default"


def _allowed_keys(section: tuple[str, ...]) -> list[str]:
    model: type[BaseModel] = Settings
    for part in section:
        annotation = model.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            break
        model = annotation
    return sorted(model.model_fields)


def iter_setting_keys(model: type[BaseModel] = Settings, prefix: str = "") -> list[tuple[str, str]]:
    """Every setting as (dotted key, description): the list the README must document."""
    keys: list[tuple[str, str]] = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.extend(iter_setting_keys(annotation, f"{prefix}{name}."))
        else:
            keys.append((f"{prefix}{name}", field.description or ""))
    return keys
