"""`riskwatch export`: exact CSV bytes, sidecar, GeoJSON, GeoPackage, suppression, exit codes.

One database per backend, written with SQLModel rows (so the expected bytes below are the same
on SQLite and PostgreSQL: the golden CSVs are the cross-backend comparison), read by every test.
The CLI is driven through click's runner, so standard output is checked byte for byte.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pyogrio
import pytest
from click.testing import CliRunner, Result
from shapely.geometry import MultiPolygon, Polygon
from sqlalchemy.engine import Engine

from riskwatch.cli import cli
from riskwatch.db.engine import make_engine, session_scope
from riskwatch.db.migrate import head_revision, upgrade
from riskwatch.db.models import Area, IngestBatch, Observation, Source
from riskwatch.export_writers import format_numbers, geometry_json, sidecar_path
from riskwatch.privacy import sensitivity_label

pytestmark = pytest.mark.db

JANUARY = date(2024, 1, 1)
FEBRUARY = date(2024, 2, 1)
FIRST_INGEST = datetime(2024, 3, 1, 12, 0, tzinfo=UTC)
REVISION = datetime(2024, 4, 1, 12, 0, tzinfo=UTC)
THRESHOLD = 5  # privacy.small_count_threshold's default

PORT_AU_PRINCE = MultiPolygon([Polygon([
    (-72.3456789123, 18.5432109876), (-72.2, 18.5432109876), (-72.2, 18.6), (-72.3456789123, 18.6),
])])

# Batches: 1 boundaries, 2 gazetteer, 3 DTM, 4 partner table, 5 DTM revision.
OBSERVATIONS_CSV = (
    b"pcode,admin_level,variable,period,value,operation,assessment_type,round,source,batch\n"
    b"#adm+code,#adm+level,#indicator+code,#date,#indicator+value+num,#operation+name,"
    b"#assessment+type,#round+code,#meta+source,#meta+batch\n"
    b"HT0111,2,ct_cases,2024-01-01,,,,,ct-partners,4\n"
    b'HT0111,2,idps,2024-01-01,300,"Haiti, Ouest",BA,1,dtm-hti,3\n'
    b"HT0111,2,idps,2024-01-01,1250,Op A,BA,1,dtm-hti,5\n"
    b"HT0111,2,idps,2024-01-01,1400,,SA,1,dtm-hti,3\n"
    b"HT0112,2,ct_cases,2024-01-01,0,,,,ct-partners,4\n"
    b"HT0112,2,ipc_phase3plus_share,2024-01-01,0.35,,,,ct-partners,4\n"
    b"HT0113,2,ct_cases,2024-01-01,7,,,,ct-partners,4\n"
    b"HT0113,2,idps,2024-01-01,40,,BA,1,dtm-hti,3\n"
    b"MLI0101,2,idps,2024-02-01,10,,BA,,dtm-hti,3\n"
)

AREAS_CSV = (
    "pcode,name,admin_level,parent_pcode,country\n"
    "#adm+code,#adm+name,#adm+level,#adm+code+parent,#country+code\n"
    "HT0111,Port-au-Prince,2,HT01,HTI\n"
    "HT0112,Delmas,2,HT01,HTI\n"
    "HT0113,Cité Soleil,2,HT01,HTI\n"
    "MLI0101,Bamako,2,,MLI\n"
).encode()


def _build(engine: Engine) -> None:
    with session_scope(engine) as session:
        session.add_all([
            Source(id="cod-ab", kind="boundaries", location="test://cod", title="OCHA COD-AB",
                   attribution="OCHA Common Operational Datasets", licence="CC BY-IGO"),
            Source(id="ocha-gazetteer", kind="gazetteer", location="test://gazetteer"),
            Source(id="dtm-hti", kind="dtm", location="test://dtm", title="IOM DTM Haiti",
                   attribution="IOM Displacement Tracking Matrix (DTM)",
                   licence="IOM DTM terms of use"),
            Source(id="ct-partners", kind="table", location="test://ct",
                   title="CT partner counts", attribution="Counter-trafficking partners",
                   licence="Restricted: not for redistribution"),
        ])
        session.flush()
        batches = [
            IngestBatch(source_id=source, kind=kind, location="test://", status="succeeded",
                        started_at=started)
            for source, kind, started in [
                ("cod-ab", "boundaries", FIRST_INGEST), ("ocha-gazetteer", "gazetteer",
                                                         FIRST_INGEST),
                ("dtm-hti", "dtm", FIRST_INGEST), ("ct-partners", "table", FIRST_INGEST),
                ("dtm-hti", "dtm", REVISION),
            ]
        ]
        for batch in batches:  # one by one: the ids are the same on both backends
            session.add(batch)
            session.flush()
        boundaries, gazetteer, dtm, partners, revision = (b.id for b in batches)
        square = MultiPolygon([Polygon([(-3, 12), (-2, 12), (-2, 13), (-3, 13)])])
        session.add_all([
            Area(pcode="HTI", name="Haiti", admin_level=0, country_iso3="HTI",
                 batch_id=boundaries),
            Area(pcode="HT01", name="Ouest", admin_level=1, parent_pcode="HTI",
                 country_iso3="HTI", geometry=PORT_AU_PRINCE, batch_id=boundaries),
            Area(pcode="HT0111", name="Port-au-Prince", admin_level=2, parent_pcode="HT01",
                 country_iso3="HTI", geometry=PORT_AU_PRINCE, batch_id=boundaries),
            Area(pcode="HT0112", name="Delmas", admin_level=2, parent_pcode="HT01",
                 country_iso3="HTI", geometry=PORT_AU_PRINCE, batch_id=boundaries),
            Area(pcode="HT0113", name="Cité Soleil", admin_level=2, parent_pcode="HT01",
                 country_iso3="HTI", batch_id=gazetteer),  # gazetteer: no geometry
            Area(pcode="MLI", name="Mali", admin_level=0, country_iso3="MLI",
                 batch_id=boundaries),
            Area(pcode="MLI0101", name="Bamako", admin_level=2, country_iso3="MLI",
                 geometry=square, batch_id=boundaries),
        ])
        session.flush()

        def add(pcode: str, variable: str, value: float, batch_id: int | None,
                period: date = JANUARY, **extra: object) -> None:
            assert batch_id is not None
            extra.setdefault("recorded_at", FIRST_INGEST)
            session.add(Observation(area_pcode=pcode, variable=variable, period=period,
                                    value=value, batch_id=batch_id, **extra))

        dtm_row = {"assessment_type": "BA", "round": "1"}
        add("HT0111", "idps", 1200, dtm, operation="Op A", version=1, superseded_at=REVISION,
            **dtm_row)
        add("HT0111", "idps", 1250, revision, operation="Op A", version=2,
            recorded_at=REVISION, **dtm_row)
        add("HT0111", "idps", 300, dtm, operation="Haiti, Ouest", **dtm_row)
        add("HT0111", "idps", 1400, dtm, assessment_type="SA", round="1")
        add("HT0113", "idps", 40, dtm, **dtm_row)
        add("MLI0101", "idps", 10, dtm, period=FEBRUARY, assessment_type="BA")
        add("HT0111", "ct_cases", 3, partners)
        add("HT0112", "ct_cases", 0, partners)
        add("HT0113", "ct_cases", 7, partners)
        add("HT0112", "ipc_phase3plus_share", 0.35, partners)


@dataclass
class Exporter:
    """Runs `riskwatch export ...` against the module's database."""

    url: str

    def __call__(self, *args: str) -> Result:
        return CliRunner().invoke(cli, ["export", *args],
                                  env={"RISKWATCH_DATABASE_URL": self.url})


@pytest.fixture(scope="module")
def export_database(module_database_url: str) -> Iterator[str]:
    engine = make_engine(module_database_url)
    upgrade(engine)
    _build(engine)
    engine.dispose()
    yield module_database_url


@pytest.fixture
def run(export_database: str) -> Exporter:
    return Exporter(export_database)


# --- csv -----------------------------------------------------------------------------------------
def test_observations_csv_is_exactly_the_contract(run: Exporter) -> None:
    result = run("observations", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == OBSERVATIONS_CSV  # same literal on both backends
    assert result.stderr == ""


def test_areas_csv_is_exactly_the_contract(run: Exporter) -> None:
    result = run("areas", "--format", "csv")
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes == AREAS_CSV
    assert not result.stdout_bytes.startswith(b"\xef\xbb\xbf")  # no BOM


def test_filters(run: Exporter) -> None:
    areas = run("areas", "--format", "csv", "--level", "1").stdout.splitlines()
    assert areas[2:] == ["HT01,Ouest,1,HTI,HTI"]
    mali = run("observations", "--format", "csv", "--country", "mli").stdout.splitlines()
    assert mali[2:] == ["MLI0101,2,idps,2024-02-01,10,,BA,,dtm-hti,3"]
    idps = run("observations", "--format", "csv", "--variable", "idps",
               "--period", "2024-01-01").stdout.splitlines()
    assert [line.split(",")[0] for line in idps[2:]] == ["HT0111"] * 3 + ["HT0113"]


def test_repeated_exports_are_byte_identical(run: Exporter, tmp_path: Path) -> None:
    for name in ("a.csv", "b.csv"):
        result = run("observations", "--format", "csv", "--out", str(tmp_path / name))
        assert result.exit_code == 0 and result.stdout == ""
    assert (tmp_path / "a.csv").read_bytes() == (tmp_path / "b.csv").read_bytes()
    assert (tmp_path / "a.csv").read_bytes() == OBSERVATIONS_CSV
    assert (sidecar_path(tmp_path / "a.csv").read_bytes()
            == sidecar_path(tmp_path / "b.csv").read_bytes())
    for name in ("a.geojson", "b.geojson"):
        run("observations", "--format", "geojson", "--out", str(tmp_path / name))
    assert (tmp_path / "a.geojson").read_bytes() == (tmp_path / "b.geojson").read_bytes()


def test_the_sidecar_names_sources_sensitivity_filters_and_schema(
    run: Exporter, tmp_path: Path
) -> None:
    out = tmp_path / "idps.csv"
    result = run("observations", "--format", "csv", "--out", str(out))
    assert "Wrote 9 observations rows" in result.stderr
    text = (tmp_path / "idps.csv.about.txt").read_text(encoding="utf-8")
    label = sensitivity_label({"ct_cases", "idps", "ipc_phase3plus_share"}, THRESHOLD)
    assert text.splitlines()[:7] == [
        "riskwatch export: observations (csv)",
        "Layout: UTF-8 CSV; row 1 column names, row 2 HXL hashtags, then data rows.",
        "Rows: 9",
        "Filters: level: 2 (finest with data); variable: all; period: all; country: all; "
        "as of: current versions",
        f"Database schema revision: {head_revision()}",
        label,
        "Suppressed values: 1 (sensitive counts from 1 to 4 left blank)",
    ]
    assert "- CT partner counts (ct-partners)\n  Attribution: Counter-trafficking partners\n" \
           "  Licence: Restricted: not for redistribution" in text
    assert "- IOM DTM Haiti (dtm-hti)\n  Attribution: IOM Displacement Tracking Matrix (DTM)\n" \
           "  Licence: IOM DTM terms of use" in text
    assert "cod-ab" not in text  # only the sources of the exported rows


def test_the_areas_sidecar_says_what_is_not_recorded(run: Exporter, tmp_path: Path) -> None:
    run("areas", "--format", "csv", "--out", str(tmp_path / "areas.csv"))
    text = (tmp_path / "areas.csv.about.txt").read_text(encoding="utf-8")
    assert "Filters: level: 2 (finest loaded); country: all" in text
    assert "- ocha-gazetteer\n  Attribution: not recorded for this source" in text
    assert "  Licence: CC BY-IGO" in text
    assert "Suppressed" not in text and sensitivity_label([], THRESHOLD) in text


def test_as_of_before_the_revision_gives_the_old_value(run: Exporter, tmp_path: Path) -> None:
    before = run("observations", "--format", "csv", "--as-of", "2024-03-15T00:00:00")
    assert "HT0111,2,idps,2024-01-01,1200,Op A,BA,1,dtm-hti,3" in before.stdout.splitlines()
    after = run("observations", "--format", "csv", "--as-of", "2024-04-01T12:00:00Z")
    assert after.stdout_bytes == OBSERVATIONS_CSV
    out = tmp_path / "then.csv"
    run("observations", "--format", "csv", "--as-of", "2024-03-15", "--out", str(out))
    assert "as of: 2024-03-15T00:00:00Z" in sidecar_path(out).read_text(encoding="utf-8")


def test_as_of_before_any_data_is_an_empty_export(run: Exporter) -> None:
    result = run("observations", "--format", "csv", "--as-of", "2020-01-01")
    assert result.exit_code == 0
    assert result.stdout_bytes == b"".join(OBSERVATIONS_CSV.splitlines(keepends=True)[:2])
    assert "no observations match" in result.stderr


# --- geojson -------------------------------------------------------------------------------------
def test_areas_geojson(run: Exporter) -> None:
    result = run("areas", "--format", "geojson")
    assert result.exit_code == 0, result.output
    collection = json.loads(result.stdout_bytes)
    assert collection["type"] == "FeatureCollection"
    assert collection["attribution"] == (
        "OCHA COD-AB (cod-ab): OCHA Common Operational Datasets; "
        "ocha-gazetteer: no attribution recorded"
    )
    assert collection["licence"] == "OCHA COD-AB (cod-ab): CC BY-IGO; " \
                                    "ocha-gazetteer: no licence recorded"
    assert collection["sensitivity"] == sensitivity_label([], THRESHOLD)
    features = {feature["id"]: feature for feature in collection["features"]}
    assert list(features) == ["HT0111", "HT0112", "HT0113", "MLI0101"]
    assert features["HT0113"]["geometry"] is None  # gazetteer area
    assert features["HT0113"]["properties"] == {
        "pcode": "HT0113", "name": "Cité Soleil", "admin_level": 2, "parent_pcode": "HT01",
        "country": "HTI",
    }
    assert features["MLI0101"]["properties"]["parent_pcode"] is None
    ring = features["HT0111"]["geometry"]["coordinates"][0][0]
    assert features["HT0111"]["geometry"]["type"] == "MultiPolygon"
    assert ring[0] == [-72.345679, 18.543211]


def test_observations_geojson_has_one_feature_per_row(run: Exporter) -> None:
    collection = json.loads(run("observations", "--format", "geojson").stdout_bytes)
    features = collection["features"]
    assert len(features) == 9 and collection["export"]["rows"] == 9
    columns = OBSERVATIONS_CSV.decode().splitlines()[0].split(",")
    assert all(list(feature["properties"]) == columns for feature in features)
    assert "id" not in features[0]  # pcodes repeat: no feature id
    cases = {f["properties"]["pcode"]: f["properties"]["value"] for f in features
             if f["properties"]["variable"] == "ct_cases"}
    assert cases == {"HT0111": None, "HT0112": 0, "HT0113": 7}
    assert features[0]["properties"]["period"] == "2024-01-01"
    assert collection["sensitivity"].endswith(f"below {THRESHOLD} are suppressed.")
    assert collection["export"]["suppressed_values"] == 1
    assert [s["id"] for s in collection["sources"]] == ["ct-partners", "dtm-hti"]


def test_geometry_json_rounds_to_six_decimals() -> None:
    texts = geometry_json([PORT_AU_PRINCE, None])
    assert texts[1] == "null"
    coordinates = json.loads(texts[0])["coordinates"][0][0]
    assert all(value == round(value, 6) for point in coordinates for value in point)
    assert coordinates[0] == [-72.345679, 18.543211]


# --- gpkg ----------------------------------------------------------------------------------------
def test_gpkg_holds_the_rows_and_the_about_table(run: Exporter, tmp_path: Path) -> None:
    out = tmp_path / "observations.gpkg"
    result = run("observations", "--format", "gpkg", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert result.stdout == "" and not sidecar_path(out).exists()
    layers = {name for name, _ in pyogrio.list_layers(out)}
    assert layers == {"observations", "about"}
    layer = gpd.read_file(out, layer="observations")
    assert list(layer.columns[:-1]) == OBSERVATIONS_CSV.decode().splitlines()[0].split(",")
    assert len(layer) == 9 and layer.crs.to_epsg() == 4326
    cases = layer[layer["variable"] == "ct_cases"].set_index("pcode")["value"]
    assert math.isnan(cases["HT0111"]) and cases["HT0112"] == 0 and cases["HT0113"] == 7
    assert layer.set_index("pcode").geometry.isna()["HT0113"].all()
    about = dict(pyogrio.read_dataframe(out, layer="about").itertuples(index=False))
    assert about["attribution"].startswith("CT partner counts (ct-partners): Counter-traff")
    assert "IOM DTM terms of use" in about["licence"]
    assert about["sensitivity"] == sensitivity_label({"ct_cases", "idps"}, THRESHOLD)
    assert about["filter_level"] == "2 (finest with data)"
    metadata = pyogrio.read_info(out, layer="observations")["layer_metadata"]
    assert metadata["sensitivity"] == about["sensitivity"]


def test_gpkg_of_areas_keeps_gazetteer_areas(run: Exporter, tmp_path: Path) -> None:
    out = tmp_path / "areas.gpkg"
    assert run("areas", "--format", "gpkg", "--out", str(out)).exit_code == 0
    layer = gpd.read_file(out, layer="areas")
    assert layer["pcode"].tolist() == ["HT0111", "HT0112", "HT0113", "MLI0101"]
    assert layer.geometry.isna().tolist() == [False, False, True, False]
    assert run("areas", "--format", "gpkg", "--out", str(out)).exit_code == 0  # overwrites
    assert len(gpd.read_file(out, layer="areas")) == 4


# --- exit codes ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["areas", "--format", "html"], 2, "html exports are maps of risk classes"),
        (["areas", "--format", "png"], 2, "png exports are maps of risk classes"),
        (["scores", "--format", "png"], 2, "binary format"),
        (["observations", "--format", "gpkg"], 2, "binary format"),
        (["bogus", "--format", "csv"], 2, "'bogus' is not one of"),
        (["areas", "--format", "xlsx"], 2, "'xlsx' is not one of"),
        (["areas"], 2, "Missing option '--format'"),
        (["observations", "--format", "csv", "--period", "2024-1-1"], 2, "--period takes"),
        (["observations", "--format", "csv", "--period", "2024-02-30"], 2, "--period takes"),
        (["observations", "--format", "csv", "--as-of", "soon"], 2, "--as-of takes"),
        (["observations", "--format", "csv", "--country", "HT"], 2, "ISO3 code"),
        (["areas", "--format", "csv", "--variable", "idps"], 2, "--variable does not apply"),
        (["observations", "--format", "csv", "--run", "1"], 2, "--run does not apply"),
        (["observations", "--format", "csv", "--country", "COD"], 1, "no areas for country COD"),
        (["observations", "--format", "csv", "--variable", "idsp"], 1, "variables loaded: "
                                                                        "ct_cases, idps"),
        (["areas", "--format", "csv", "--level", "4"], 1, "levels loaded: 0, 1, 2"),
        (["scores", "--format", "csv"], 1,
         "nothing to export: the scoring engine has not produced any score run"),
        (["hotspots", "--format", "geojson"], 1, "has not produced any score run"),
        (["alerts", "--format", "csv"], 1, "has not produced any score run"),
        (["areas", "--format", "csv", "--out", "missing/areas.csv"], 1, "does not exist"),
    ],
)
def test_exit_codes(run: Exporter, args: list[str], code: int, message: str) -> None:
    result = run(*args)
    assert result.exit_code == code, result.output
    assert message in " ".join(result.stderr.split())
    assert result.stdout == ""  # never anything but data on standard output


def test_an_empty_export_is_not_an_error(run: Exporter) -> None:
    result = run("observations", "--format", "csv", "--level", "1")
    assert result.exit_code == 0
    assert len(result.stdout.splitlines()) == 2


def test_an_empty_database_has_nothing_to_export(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'empty.db'}"
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    for what, message in [("areas", "no areas are loaded"),
                          ("observations", "no observations are loaded")]:
        result = Exporter(url)(what, "--format", "csv")
        assert result.exit_code == 1 and message in result.stderr


def test_an_unreachable_database_is_exit_1() -> None:
    result = Exporter("postgresql+psycopg://nobody@127.0.0.1:1/none")("areas", "--format", "csv")
    assert result.exit_code == 1 and "cannot reach the database" in result.stderr


# --- number format -------------------------------------------------------------------------------
def test_numbers_are_exact_and_integers_have_no_decimals() -> None:
    values = [0.0, -0.0, 1250.0, -3.0, 0.35, 1.2e-05, 1 / 3, 2.0**53, 1e20, 1234.5,
              math.nan, math.inf]
    cells = format_numbers(pd.Series(values))
    assert cells == ["0", "0", "1250", "-3", "0.35", "0.000012", "0.3333333333333333",
                     "9007199254740992", "100000000000000000000", "1234.5", "", ""]
    for value, cell in zip(values, cells, strict=True):
        if cell:
            assert float(cell) == value  # exact round trip
