"""`riskwatch ingest --file`: usage, the bad-row threshold, refusals that write nothing, reports.

Small files written in tmp_path; every database test runs on SQLite and PostgreSQL. The helpers
here are shared by the other tests/test_ingest_*.py modules.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from sqlalchemy import func
from sqlmodel import Session, select

from riskwatch.cli import cli
from riskwatch.db.engine import make_engine
from riskwatch.db.models import Area, IngestBatch, Observation

DTM_HEADER = (
    "operation,admin0Pcode,admin1Pcode,admin2Pcode,adminLevel,numPresentIdpInd,reportingDate,"
    "roundNumber,assessmentType"
)


# --- helpers shared by the ingest tests --------------------------------------------------------


def invoke(url: str, *args: str, env: dict[str, str] | None = None) -> Result:
    """Run the CLI on the database ``url`` (output and errors in ``result.output``)."""
    return CliRunner().invoke(cli, list(args), env={"RISKWATCH_DATABASE_URL": url, **(env or {})})


def migrate(url: str) -> None:
    result = invoke(url, "db", "upgrade")
    assert result.exit_code == 0, result.output


def ingest(
    url: str, *args: str, env: dict[str, str] | None = None, code: int | None = 0
) -> Result:
    """`riskwatch ingest ARGS`, asserting its exit code (unless ``code`` is None)."""
    result = invoke(url, "ingest", *args, env=env)
    if code is not None:
        assert result.exit_code == code, result.output
    assert "Traceback" not in result.output
    return result


def query(url: str, statement: Any) -> list[Any]:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return list(session.exec(statement).all())
    finally:
        engine.dispose()


def count(url: str, model: type) -> int:
    return int(query(url, select(func.count()).select_from(model))[0])


def batches(url: str) -> list[IngestBatch]:
    return query(url, select(IngestBatch).order_by(IngestBatch.id))


def dtm_csv(path: Path, values: Sequence[str], *, header: str = DTM_HEADER) -> Path:
    """A DTM export of AFG admin0 figures, one round per value (countries need no areas)."""
    start = dt.date(2001, 1, 1)
    lines = [header]
    for number, value in enumerate(values, 1):
        day = (start + dt.timedelta(days=number)).isoformat()
        lines.append(f"Test operation,AFG,,,0,{value},{day},{number},BA")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def values_with_bad(total: int, bad: int) -> list[str]:
    """``total`` head counts, the first ``bad`` of them not numbers."""
    return ["n/a" if i < bad else str(1000 + i) for i in range(total)]


# --- usage -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ingest"], "give a SOURCE_ID"),
        (["ingest", "--file", "x.csv"], "--file needs --kind"),
        (["ingest", "--file", "x.csv", "--kind", "nonsense"], "'nonsense' is not one of"),
        (["ingest", "some-source", "--file", "x.csv", "--kind", "dtm"], "not both"),
        (["ingest", "some-source", "--country", "AFG"], "cannot be used with SOURCE_ID"),
        (["ingest", "--file", "x.csv", "--kind", "table"], "needs --mapping"),
        (["ingest", "--file", "x.csv", "--kind", "dtm", "--mapping", "m.toml"], "not used by"),
        (["ingest", "--file", "x.csv", "--kind", "dtm", "--country", "Narnia"], "ISO3"),
        (["ingest", "--file", "x.csv", "--kind", "boundaries", "--level", "9"], "--level"),
    ],
)
def test_bad_usage_exits_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = invoke(f"sqlite:///{tmp_path / 'unused.db'}", *args)
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert not (tmp_path / "unused.db").exists()  # nothing was opened, let alone written


def test_a_bad_mapping_file_is_a_configuration_error(tmp_path: Path) -> None:
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('period = 2024-01-01\ncolumns = ["a"]\n')
    result = invoke(f"sqlite:///{tmp_path / 'unused.db'}", "ingest", "--file", "x.csv",
                    "--kind", "table", "--mapping", str(mapping))
    assert result.exit_code == 2, result.output
    assert str(mapping) in result.output and "'columns'" in result.output


def test_missing_file_and_unknown_source_exit_1(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'rw.db'}"
    migrate(url)
    missing = ingest(url, "--file", str(tmp_path / "nowhere.csv"), "--kind", "dtm", code=1)
    assert "file not found" in missing.output
    unknown = ingest(url, "no-such-source", code=1)
    assert "unknown source id 'no-such-source'" in unknown.output
    assert count(url, IngestBatch) == 0


# --- the bad-row threshold (ingest.max_bad_row_share = 0.05) -----------------------------------


def test_four_percent_bad_rows_are_quarantined_six_percent_refuse_the_file(
    database_url: str, tmp_path: Path
) -> None:
    migrate(database_url)
    four = dtm_csv(tmp_path / "four.csv", values_with_bad(100, 4))
    result = ingest(database_url, "--file", str(four), "--kind", "dtm")
    assert count(database_url, Observation) == 96
    batch = batches(database_url)[-1]
    assert (batch.status, batch.rows_read, batch.rows_stored, batch.rows_quarantined) == (
        "succeeded", 100, 96, 4
    )
    # Each problem is shown with its row, column, value and rule.
    assert "numPresentIdpInd" in result.output and "n/a" in result.output
    assert "bad_number" in result.output
    problem = batch.report["problems"][0]
    assert (problem["row"], problem["column"], problem["value"], problem["rule"]) == (
        2, "numPresentIdpInd", "n/a", "bad_number"
    )

    six = dtm_csv(tmp_path / "six.csv", values_with_bad(100, 6))
    refused = ingest(database_url, "--file", str(six), "--kind", "dtm", code=1)
    assert "6 of 100 file rows are bad (6.0%" in refused.output
    assert "ingest.max_bad_row_share" in refused.output
    assert count(database_url, Observation) == 96  # nothing written
    last = batches(database_url)[-1]
    assert (last.status, last.rows_stored, last.rows_quarantined) == ("refused", 0, 6)
    assert last.report["problem_count"] == 6 and "6 of 100" in last.report["message"]


def test_rows_with_unknown_pcodes_count_as_bad_file_rows(database_url: str, tmp_path: Path) -> None:
    """Pcodes are matched after reading: their failures are counted in file rows too."""
    migrate(database_url)
    gazetteer = tmp_path / "pcodes.csv"
    gazetteer.write_text(
        "Location,Admin Level,P-Code,Name,Parent P-Code\n"
        + "".join(f"AFG,1,AF{i:03d},Province {i},AFG\n" for i in range(1, 101)),
        encoding="utf-8",
    )
    ingest(database_url, "--file", str(gazetteer), "--kind", "gazetteer")
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('period = 2024-01-01\n[variables]\npopulation = "population"\n')

    def table(name: str, unknown: int) -> Path:
        path = tmp_path / name
        rows = [f"AF{900 + i:03d}" if i < unknown else f"AF{i + 1:03d}" for i in range(100)]
        path.write_text("pcode,population\n" + "".join(f"{p},{5000 + n}\n"
                                                        for n, p in enumerate(rows)))
        return path

    ingest(database_url, "--file", str(table("four.csv", 4)), "--kind", "table",
           "--mapping", str(mapping))
    batch = batches(database_url)[-1]
    assert (batch.status, batch.rows_stored, batch.rows_quarantined) == ("succeeded", 96, 4)
    assert batch.report["counts"]["figures_unknown_pcode"] == 4
    assert {p["rule"] for p in batch.report["problems"]} == {"unknown_pcode"}

    refused = ingest(database_url, "--file", str(table("six.csv", 6)), "--kind", "table",
                     "--mapping", str(mapping), code=1)
    assert "6 of 100 file rows are bad" in refused.output
    assert "unknown pcodes" in refused.output
    assert count(database_url, Observation) == 96


def test_missing_required_column_refuses_and_writes_nothing(
    database_url: str, tmp_path: Path
) -> None:
    migrate(database_url)
    header = DTM_HEADER.replace("numPresentIdpInd,", "")
    path = tmp_path / "no-figures.csv"
    path.write_text(header + "\nTest operation,AFG,,,0,2020-01-01,1,BA\n")
    result = ingest(database_url, "--file", str(path), "--kind", "dtm", code=1)
    assert "required column value not found" in result.output
    assert "numPresentIdpInd" in result.output
    assert count(database_url, Observation) == 0
    assert count(database_url, Area) == 0  # not even the implicit country
    batch = batches(database_url)[-1]
    assert batch.status == "refused" and batch.source_id == "file:no-figures.csv"
    assert batch.report["problems"][0]["rule"] == "missing_column"


def test_report_shows_the_first_50_problems_and_the_total(database_url: str,
                                                         tmp_path: Path) -> None:
    migrate(database_url)
    path = dtm_csv(tmp_path / "many.csv", values_with_bad(1200, 1100))
    # Allow every row to be bad, so that the report's limits are what is tested.
    result = ingest(database_url, "--file", str(path), "--kind", "dtm",
                    env={"RISKWATCH_INGEST__MAX_BAD_ROW_SHARE": "1.0"})
    assert "first 50 of 1,100" in result.output
    batch = batches(database_url)[-1]
    assert batch.rows_stored == 100 and batch.rows_quarantined == 1100
    assert batch.report["problem_count"] == 1100
    assert len(batch.report["problems"]) == 1000  # the batch keeps the first 1000
