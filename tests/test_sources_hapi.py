"""read_hapi_table on the real HDX HAPI fixtures (IDPs, IPC, conflict) and on small files."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from riskwatch.sources.dtm import read_dtm_table
from riskwatch.sources.hapi import read_hapi_table

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
needs_data = pytest.mark.skipif(not DATA.exists(), reason="shared test data not available")


def _afg_ba_totals(frame):
    idps = frame[
        (frame["variable"] == "idps")
        & (frame["country_iso3"] == "AFG")
        & (frame["assessment_type"] == "BA")
    ]
    return idps.groupby(["round", "period", "admin_level"])["value"].sum()


@needs_data
def test_hapi_idps_give_the_same_totals_per_round_as_the_dtm_export() -> None:
    hapi = read_hapi_table(DATA / "dtm" / "hapi-idps_AFG_TCD.csv")
    dtm = read_dtm_table(DATA / "dtm" / "dtm-api-admin0-2_AFG_TCD.csv")
    assert hapi.meta["hapi_table"] == "idps"
    assert not hapi.problems and hapi.rows_quarantined == 0
    hapi_totals, dtm_totals = _afg_ba_totals(hapi.frame), _afg_ba_totals(dtm.frame)
    assert len(hapi_totals) == 16 * 3
    assert hapi_totals.to_dict() == dtm_totals.to_dict()
    # HAPI's pcode repairs (TD07 -> TCD07) are passed on as notes.
    assert any("TD07->TCD07" in note for note in hapi.notes)
    assert "TCD07" in set(hapi.frame["pcode"])


@needs_data
def test_food_security_shares_with_hapi_errors_quarantined() -> None:
    result = read_hapi_table(DATA / "ipc" / "hapi-food-security_AFG.csv")
    assert result.meta["hapi_table"] == "food_security"
    errors = [p for p in result.problems if p.rule == "source_error"]
    assert len(errors) == 1218
    assert any("urban pattern" in p.message for p in errors)
    frame = result.frame
    assert set(frame["variable"]) == {f"ipc_phase{n}_share" for n in range(1, 6)} | {
        "ipc_phase3plus_share"
    }
    assert frame["value"].between(0, 1).all()
    national = frame[(frame["pcode"] == "AFG") & (frame["period"] == dt.date(2023, 4, 1))]
    assert national.set_index("variable")["value"]["ipc_phase3plus_share"] == pytest.approx(0.4)
    assert not frame.duplicated(["pcode", "period", "variable"]).any()


@needs_data
def test_conflict_events_by_event_type() -> None:
    result = read_hapi_table(DATA / "conflict" / "hapi-conflict-events-2025-01.csv")
    assert result.meta["hapi_table"] == "conflict_events"
    frame = result.frame
    afg = frame[(frame["country_iso3"] == "AFG") & (frame["admin_level"] == 2)]
    assert afg["pcode"].nunique() == 398
    assert "conflict_events_political_violence" in set(frame["variable"])
    # Demonstrations carry no fatality figure in HAPI: missing, not zero.
    assert "conflict_fatalities_demonstration" not in set(frame["variable"])
    assert set(frame["period"]) == {dt.date(2025, 1, 1)}
    assert [p.message for p in result.problems if p.rule == "source_error"] == [
        "Non matching p-code"
    ] * 3


HAPI_IPC = (
    "location_code,admin1_code,admin2_code,admin_level,ipc_phase,ipc_type,"
    "population_fraction_in_phase,reference_period_start,warning,error\n"
)


def test_current_analysis_is_preferred_to_projections(tmp_path: Path) -> None:
    path = tmp_path / "ipc.csv"
    path.write_text(
        HAPI_IPC
        + "XDM,XD01,,1,3+,current,0.30,2024-01-01,,\n"
        + "XDM,XD01,,1,3+,first projection,0.45,2024-01-01,,\n"
        + "XDM,XD01,,1,3+,first projection,0.50,2024-04-01,,\n"
        + "XDM,XD02,,1,4,current,1.5,2024-01-01,,\n"
        + "XDM,,,1,3+,current,0.2,2024-01-01,,Ignoring urban pattern\n"
    )
    result = read_hapi_table(path)
    values = result.frame.set_index(["pcode", "period"])["value"]
    assert values[("XD01", dt.date(2024, 1, 1))] == 0.30
    assert values[("XD01", dt.date(2024, 4, 1))] == 0.50  # no current analysis then
    assert {(p.row, p.rule) for p in result.problems} == {(5, "out_of_range"), (6, "source_error")}
    error = next(p for p in result.problems if p.rule == "source_error")
    assert error.message == "Ignoring urban pattern"
    assert result.meta["ipc_types_used"] == {"current": 1, "first projection": 1}


def test_unrecognised_table_is_fatal(tmp_path: Path) -> None:
    path = tmp_path / "other.csv"
    path.write_text("location_code,value\nAFG,1\n")
    result = read_hapi_table(path)
    assert result.fatal and result.problems[0].rule == "unrecognised_table"
