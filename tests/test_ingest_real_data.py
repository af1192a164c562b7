"""The real files in /work/shared/data through `riskwatch ingest`, on SQLite and PostgreSQL.

One database per backend for the module: AFG admin1 boundaries, the OCHA gazetteer (AFG), then
the DTM export. The tests run in file order; the later ones add to the database (HAPI, Chad's
pcodes, a revised figure) and say so.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sqlmodel import Session, col, select

from riskwatch.db.engine import make_engine
from riskwatch.db.models import Area, IngestBatch, Observation
from riskwatch.observations import observations_frame, preferred_values
from riskwatch.sources.dtm import read_dtm_table
from riskwatch.sources.hapi import read_hapi_table
from tests.test_ingest_cli import batches, count, ingest, migrate, query

BOUNDARIES = "boundaries/afg_adm1_geoboundaries_pcodes.geojson"
GAZETTEER = "pcodes/global-pcodes-adm-1-2.csv"
DTM = "dtm/dtm-api-admin0-2_AFG_TCD.csv"
HAPI = "dtm/hapi-idps_AFG_TCD.csv"
IPC = "ipc/hapi-food-security_AFG.csv"


@pytest.fixture(scope="module")
def loaded(module_database_url: str) -> str:
    """The database with AFG boundaries, AFG pcodes and the DTM export loaded."""
    from tests.conftest import SHARED_DATA

    if not SHARED_DATA.is_dir():
        pytest.skip(f"real test data not present at {SHARED_DATA}")
    url = module_database_url
    migrate(url)
    ingest(url, "--file", str(SHARED_DATA / BOUNDARIES), "--kind", "boundaries", "--level", "1")
    ingest(url, "--file", str(SHARED_DATA / GAZETTEER), "--kind", "gazetteer", "--country", "AFG")
    ingest(url, "--file", str(SHARED_DATA / DTM), "--kind", "dtm")
    return url


def frame(url: str, **filters: object) -> pd.DataFrame:
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            return observations_frame(session, variables=["idps"], **filters)
    finally:
        engine.dispose()


def dtm_batch(url: str) -> IngestBatch:
    return [b for b in batches(url) if b.source_id == f"file:{Path(DTM).name}"][-1]


def test_every_afg_admin1_figure_joins_a_boundary_pcode(loaded: str, shared_data: Path) -> None:
    features = json.loads((shared_data / BOUNDARIES).read_text())["features"]
    boundary_pcodes = {f["properties"]["admin1Pcode"] for f in features}
    stored = frame(loaded, countries=["AFG"], levels=[1])
    assert set(stored["pcode"]) == boundary_pcodes
    # 1,395 file rows summed into 425 figures (34 provinces x 16 rounds, minus absent ones).
    assert len(stored) == 425
    with_geometry = query(loaded, select(Area.pcode).where(col(Area.geometry).is_not(None)))
    assert set(with_geometry) == boundary_pcodes


def test_every_afg_admin2_pcode_is_known_once_the_gazetteer_is_loaded(loaded: str) -> None:
    batch = dtm_batch(loaded)
    assert batch.status == "succeeded"
    assert batch.report["counts"]["figures_unknown_pcode"] == 0
    assert not [p for p in batch.report["problems"] if p["rule"] == "unknown_pcode"]
    admin2 = frame(loaded, countries=["AFG"], levels=[2])
    assert admin2["pcode"].nunique() == 401 and len(admin2) == 4857


def test_chad_without_areas_is_set_aside_not_bad(loaded: str, shared_data: Path) -> None:
    read = read_dtm_table(shared_data / DTM).frame
    chad_read = read[read["country_iso3"] == "TCD"]
    batch = dtm_batch(loaded)
    counts = batch.report["counts"]
    assert counts["figures_set_aside"] == (chad_read["admin_level"] > 0).sum() == 172
    assert batch.rows_set_aside > 0
    assert batch.rows_quarantined == 0 and counts["bad_rows"] == 0
    assert any("TCD admin level 2" in n and "set aside" in n for n in batch.report["notes"])
    # Chad's national figures need no areas: countries exist implicitly.
    chad = frame(loaded, countries=["TCD"])
    national = chad_read[(chad_read["admin_level"] == 0) & (chad_read["variable"] == "idps")]
    assert set(chad["admin_level"]) == {0} and len(chad) == len(national) > 0


def test_round_totals_are_equal_across_admin_levels(loaded: str) -> None:
    afg = frame(loaded, countries=["AFG"])
    totals = afg.groupby(["period", "admin_level"])["value"].sum().unstack("admin_level")
    assert len(totals) == 16
    assert (totals[0] == totals[1]).all() and (totals[0] == totals[2]).all()
    last = afg[(afg["period"] == max(afg["period"])) & (afg["admin_level"] == 1)]
    top = last.sort_values("value", ascending=False)["pcode"].head(3).tolist()
    assert top == ["AF32", "AF01", "AF21"]  # Hirat ~1.18 M, Kabul ~1.06 M, Balkh ~0.48 M


def test_hapi_gives_the_same_afg_totals_per_round(loaded: str, shared_data: Path) -> None:
    ingest(loaded, "--file", str(shared_data / HAPI), "--kind", "hapi")
    hapi = batches(loaded)[-1]
    # Every AFG figure of HAPI is already stored, identical, from the DTM export.
    assert hapi.status == "unchanged" and hapi.rows_stored == 0
    stored = frame(loaded, countries=["AFG"], levels=[0])
    read = read_hapi_table(shared_data / HAPI).frame
    hapi_afg = read[(read["country_iso3"] == "AFG") & (read["admin_level"] == 0)]
    assert dict(zip(stored["period"], stored["value"], strict=True)) == dict(
        zip(hapi_afg["period"], hapi_afg["value"], strict=True)
    )


def test_chad_baseline_and_site_assessments_are_not_double_counted(
    loaded: str, shared_data: Path
) -> None:
    ingest(loaded, "--file", str(shared_data / GAZETTEER), "--kind", "gazetteer",
           "--country", "TCD")
    again = ingest(loaded, "--file", str(shared_data / DTM), "--kind", "dtm")
    assert "TD07" in again.output and "TCD07" in again.output  # the prefix repair is reported
    batch = dtm_batch(loaded)
    assert batch.report["counts"]["figures_set_aside"] == 0
    assert batch.rows_stored == 172  # Chad's admin1 and admin2 figures, now placeable
    chad = frame(loaded, countries=["TCD"])
    first_round = chad[chad["period"] == pd.Timestamp("2017-09-30").date()]
    # Round 1 has a baseline (BA) and a site assessment (SA) of the same 147,032 people.
    national = first_round[first_round["admin_level"] == 0]
    assert sorted(national["assessment_type"]) == ["BA", "SA"]
    assert set(national["value"]) == {147_032}
    preferred = preferred_values(first_round)
    by_level = preferred.groupby("admin_level")["value"].sum()
    assert list(by_level) == [147_032, 147_032, 147_032]
    assert set(preferred["assessment_type"]) == {"BA"}


# HAPI's first ingest above was already a re-ingest of identical figures ("unchanged").
def test_publisher_rejected_rows_are_quarantined_but_not_counted_as_bad(
    loaded: str, shared_data: Path
) -> None:
    """HAPI's IPC table marks 1,218 "urban pattern" rows as errors itself (20% of the file)."""
    ingest(loaded, "--file", str(shared_data / IPC), "--kind", "hapi")
    batch = batches(loaded)[-1]
    counts = batch.report["counts"]
    assert batch.status == "succeeded" and counts["source_rejected_rows"] == 1218
    assert batch.rows_quarantined == 1218 + 140  # plus admin2 rows without an admin2 code
    assert counts["bad_rows"] == 140 and counts["bad_share"] < 0.05
    shares = query(loaded, select(Observation.variable).where(
        Observation.variable == "ipc_phase3plus_share").distinct())
    assert shares == ["ipc_phase3plus_share"]


@pytest.mark.parametrize("name", [BOUNDARIES, GAZETTEER, DTM])
def test_re_ingesting_the_same_file_changes_nothing(
    loaded: str, shared_data: Path, name: str
) -> None:
    options = {BOUNDARIES: ["--kind", "boundaries", "--level", "1"],
               GAZETTEER: ["--kind", "gazetteer", "--country", "TCD"],
               DTM: ["--kind", "dtm"]}[name]
    before = query(loaded, select(Observation.id, Observation.version, Observation.value))
    areas = count(loaded, Area)
    result = ingest(loaded, "--file", str(shared_data / name), *options)
    assert "Nothing changed" in result.output
    assert batches(loaded)[-1].status == "unchanged"
    after = query(loaded, select(Observation.id, Observation.version, Observation.value))
    assert sorted(after) == sorted(before) and count(loaded, Area) == areas


def test_a_revised_figure_adds_version_2_and_keeps_version_1(
    loaded: str, shared_data: Path, tmp_path: Path
) -> None:
    lines = (shared_data / DTM).read_text(encoding="utf-8").splitlines()
    # The first Kabul city district row of the last round: its figure is revised upwards.
    target = next(i for i, line in enumerate(lines)
                  if ",AF0101," in line and ",2022-12-31T" in line)
    cells = lines[target].split(",")
    header = lines[0].split(",")
    figure = header.index("numPresentIdpInd")
    cells[figure] = str(int(cells[figure]) + 1000)
    lines[target] = ",".join(cells)
    revised = tmp_path / "dtm-revised.csv"
    revised.write_text("\n".join(lines) + "\n", encoding="utf-8")

    ingest(loaded, "--file", str(revised), "--kind", "dtm")
    batch = batches(loaded)[-1]
    assert batch.status == "succeeded" and batch.rows_stored == 1
    history = query(loaded, select(Observation).where(
        Observation.area_pcode == "AF0101", Observation.variable == "idps",
        col(Observation.period) == pd.Timestamp("2022-12-31").date(),
    ).order_by(Observation.version))
    assert [o.version for o in history] == [1, 2]
    first, second = history
    assert first.superseded_at is not None and second.superseded_at is None
    assert second.value == first.value + 1000 and second.batch_id == batch.id
    assert first.batch_id != batch.id
    # The edit breaks admin0 = sum(admin2) for that round: reported, not refused.
    assert any(p["rule"] == "level_totals_mismatch" for p in batch.report["problems"])


def test_every_hxl_test_file_is_ingested_or_refused_with_a_precise_message(
    loaded: str, shared_data: Path
) -> None:
    observations = count(loaded, Observation)
    for path in sorted((shared_data / "hxl").glob("*.csv")):
        result = ingest(loaded, "--file", str(path), "--kind", "hxl", code=None)
        batch = batches(loaded)[-1]
        assert batch.source_id == f"file:{path.name}"
        if result.exit_code == 0:
            assert batch.status in ("succeeded", "unchanged")
            continue
        assert result.exit_code == 1 and batch.status == "refused"
        message = batch.report["message"]
        # Precise: says what is missing or wrong, and what to do.
        assert any(word in message for word in ("hashtag row", "maps to", "pcode", "date"))
        assert "--mapping" in message or "hashtag" in message
        assert message.splitlines()[0] in result.output.replace("\n", "")
    assert count(loaded, Observation) == observations  # the libhxl samples hold no pcodes
