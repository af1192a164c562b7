"""sources.toml (declared sources), `riskwatch ingest SOURCE_ID` and `riskwatch sources`."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from riskwatch.config import ConfigError, load_settings, packaged_path
from riskwatch.db.models import Observation, Source
from riskwatch.source_registry import _freshness, configured_sources, load_sources
from tests.test_ingest_cli import batches, count, dtm_csv, ingest, invoke, migrate, query

REPOSITORY = Path(__file__).resolve().parents[1]


def write_sources(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_packaged_sources_file_declares_nothing_and_matches_the_repository_copy() -> None:
    packaged = packaged_path("config", "sources.toml")
    assert (REPOSITORY / "config" / "sources.toml").read_text() == packaged.read_text()
    assert load_sources(packaged) == []
    path, specs = configured_sources(load_settings())
    assert path == packaged and specs == []


def test_local_file_and_setting_choose_the_sources_file(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    local = write_sources(tmp_path / "config" / "sources.toml",
                          '[[source]]\nid = "a"\nkind = "dtm"\nlocation = "a.csv"\n')
    path, specs = configured_sources(load_settings())
    assert path == Path("config/sources.toml") and [s.id for s in specs] == ["a"]
    assert specs[0].location == str(local.parent / "a.csv")  # relative to the file's folder
    other = write_sources(tmp_path / "elsewhere" / "mine.toml", "")
    monkeypatch.setenv("RISKWATCH_INGEST__SOURCES_FILE", str(other))
    assert configured_sources(load_settings()) == (other, [])


def test_every_problem_is_named_with_file_source_and_key(tmp_path: Path) -> None:
    path = write_sources(tmp_path / "sources.toml", """
extra = 1
[[source]]
id = "afg-dtm"
kind = "dtm"
query = { country = "AFG", admin_level = 7 }
schedule = "0 25 * * *"
expected_cadence_days = 0
[[source]]
id = "Bad Id"
kind = "spreadsheet"
location = "ftp://example.org/x.csv"
colour = "red"
[[source]]
id = "services"
kind = "table"
location = "services.csv"
level = "two"
country = "Narnia"
[[source]]
id = "afg-dtm"
kind = "hapi"
location = "x.csv"
query = { country = "AFG" }
""")
    with pytest.raises(ConfigError) as caught:
        load_sources(path)
    lines = str(caught.value).splitlines()
    expected = [
        "unknown top-level key 'extra'",
        "source 'afg-dtm' (entry 1): 'query' admin_level must be 0, 1, 2",
        "source 'afg-dtm' (entry 1): 'schedule' = '0 25 * * *': not a valid cron expression",
        "source 'afg-dtm' (entry 1): 'expected_cadence_days' = 0",
        "source 'Bad Id' (entry 2): 'colour' is not a known key",
        "source 'Bad Id' (entry 2): 'id' = 'Bad Id'",
        "source 'Bad Id' (entry 2): 'kind' = 'spreadsheet': expected one of dtm, hapi",
        "source 'Bad Id' (entry 2): 'location' = 'ftp://example.org/x.csv': only http and https",
        "source 'services' (entry 3): 'mapping' is required for kind = \"table\"",
        "source 'services' (entry 3): 'country' = 'Narnia'",
        "source 'services' (entry 3): 'level' = 'two'",
        "source 'afg-dtm' (entry 4): give exactly one of 'location'",
    ]
    for text in expected:
        assert any(text in line and str(path) in line for line in lines), (text, lines)

    # Through the CLI: a configuration error, exit code 2, no traceback.
    result = invoke(f"sqlite:///{tmp_path / 'rw.db'}", "sources",
                    env={"RISKWATCH_INGEST__SOURCES_FILE": str(path)})
    assert result.exit_code == 2
    assert "'kind' = 'spreadsheet'" in result.output and "Traceback" not in result.output


def test_a_declared_source_is_ingested_by_id_with_its_mapping_relative_to_the_file(
    database_url: str, tmp_path: Path
) -> None:
    migrate(database_url)
    config = tmp_path / "config"
    (config / "data").mkdir(parents=True)
    (config / "mappings").mkdir()
    (config / "data" / "services.csv").write_text(
        "pcode,Coverage (%)\nAFG,45\n", encoding="utf-8"
    )
    (config / "mappings" / "services.toml").write_text(
        'period = 2024-01-01\n[variables]\n"Coverage (%)" = "ct_service_coverage:pct"\n'
    )
    write_sources(config / "sources.toml", """
[[source]]
id = "afg-services"
kind = "table"
location = "data/services.csv"
mapping = "mappings/services.toml"
title = "CT service coverage"
attribution = "Protection cluster"
licence = "internal"
expected_cadence_days = 365
schedule = "0 6 * * 1"
""")
    result = ingest(database_url, "afg-services")  # ./config/sources.toml (the working dir)
    assert "afg-services" in result.output and "succeeded" in result.output
    values = query(database_url, Observation.__table__.select())
    assert [(v.area_pcode, v.variable, v.value) for v in values] == [
        ("AFG", "ct_service_coverage", 0.45)
    ]
    source = query(database_url, Source.__table__.select())[0]
    assert (source.title, source.attribution, source.licence, source.expected_cadence_days) == (
        "CT service coverage", "Protection cluster", "internal", 365
    )
    assert source.settings["mapping"] == str(config / "mappings" / "services.toml")
    assert source.settings["schedule"] == "0 6 * * 1"

    # The same source again: nothing new, an "unchanged" batch for the lineage.
    ingest(database_url, "afg-services")
    assert [b.status for b in batches(database_url)] == ["succeeded", "unchanged"]
    assert count(database_url, Observation) == 1


def test_a_dtm_api_source_stores_its_query_as_lineage(
    database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API answer is replaced by a recorded one (the export's rows): no network in tests."""
    from riskwatch.sources import dtm_api
    from riskwatch.sources.dtm import read_dtm_table

    recorded = dtm_csv(tmp_path / "recorded.csv", ["100", "200"])
    asked: list[dict] = []

    def answer(query: dict, *, subscription_key: str | None) -> object:
        asked.append({"query": query, "key": subscription_key})
        return read_dtm_table(recorded)

    migrate(database_url)
    write_sources(tmp_path / "config" / "sources.toml", """
[[source]]
id = "afg-dtm"
kind = "dtm"
query = { country = "AFG", admin_level = 0, from_date = 2001-01-01 }
expected_cadence_days = 90
""")
    # Without a key the real reader refuses before any request, naming the variable.
    monkeypatch.delenv("DTMAPI_SUBSCRIPTION_KEY", raising=False)
    result = ingest(database_url, "afg-dtm", code=1)
    assert "DTMAPI_SUBSCRIPTION_KEY" in result.output
    failed = batches(database_url)[-1]
    assert (failed.source_id, failed.status) == ("afg-dtm", "failed")
    assert '"from_date": "2001-01-01"' in failed.location

    monkeypatch.setattr(dtm_api, "read_dtm_api", answer)
    monkeypatch.setenv("DTMAPI_SUBSCRIPTION_KEY", "test-key")
    ingest(database_url, "afg-dtm")
    ingest(database_url, "afg-dtm")
    query_json = {"country": "AFG", "admin_level": 0, "from_date": "2001-01-01"}
    assert asked == [{"query": query_json, "key": "test-key"}] * 2
    first, second = batches(database_url)[1:]
    assert (first.status, second.status) == ("succeeded", "unchanged")
    assert first.report["query"] == query_json and first.location.startswith("dtm-api:")
    assert first.content_hash == second.content_hash  # the same answer, the same identity
    assert count(database_url, Observation) == 2


def test_sources_lists_declared_and_ingested_sources_with_freshness(
    database_url: str, tmp_path: Path
) -> None:
    migrate(database_url)
    data = tmp_path / "config"
    data.mkdir()
    old = dtm_csv(data / "old.csv", ["10", "20"])  # reported in 2001
    recent = data / "recent.csv"
    recent.write_text(old.read_text().replace("2001-01-0", f"{dt.date.today().year}-01-0"))
    write_sources(data / "sources.toml", """
[[source]]
id = "old-dtm"
kind = "dtm"
location = "old.csv"
expected_cadence_days = 90
[[source]]
id = "recent-dtm"
kind = "dtm"
location = "recent.csv"
expected_cadence_days = 400
[[source]]
id = "never"
kind = "hapi"
location = "never.csv"
expected_cadence_days = 30
""")
    ingest(database_url, "old-dtm")
    ingest(database_url, "recent-dtm")
    ingest(database_url, "--file", str(old), "--kind", "dtm", "--source-id", "adhoc")
    bad = tmp_path / "bad.csv"
    bad.write_text("nothing,useful\n1,2\n")
    ingest(database_url, "--file", str(bad), "--kind", "dtm", code=1)

    result = invoke(database_url, "sources")
    assert result.exit_code == 0, result.output
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines()
            if line.startswith("│") and line.split("│")[1].strip()}
    assert "stale" in rows["old-dtm"] and "2001-01-03" in rows["old-dtm"]
    assert "fresh" in rows["recent-dtm"]
    assert "never ingested" in rows["never"] and "unknown" in rows["never"]
    assert "unknown" in rows["adhoc"]  # no cadence declared for an ad-hoc source
    assert "refused" in rows["file:bad.csv"]


def test_freshness_rules() -> None:
    now = dt.datetime(2025, 1, 31, tzinfo=dt.UTC)
    recent = now - dt.timedelta(days=1)
    assert _freshness(now, 30, dt.date(2025, 1, 15), recent)[0] == "fresh"
    assert _freshness(now, 30, dt.date(2024, 11, 1), recent)[0] == "stale"  # old data
    assert _freshness(now, 30, None, now - dt.timedelta(days=40))[0] == "stale"  # old ingest
    assert _freshness(now, None, dt.date(2025, 1, 15), recent)[0] == "unknown"
    assert _freshness(now, 30, None, None)[0] == "unknown"
