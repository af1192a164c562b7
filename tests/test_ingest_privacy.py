"""The personal-data guard: what it flags, what it must not, and refusal through the CLI."""

from __future__ import annotations

from pathlib import Path

import pytest

from riskwatch.db.models import Area, IngestBatch, Observation
from riskwatch.privacy import find_personal_data_columns
from riskwatch.sources.tabular import read_table
from tests.test_ingest_cli import batches, count, ingest, migrate


def flagged(headers: list[str], tags: list[str | None] | None = None,
            samples: list[list[str]] | None = None, **options: object) -> dict[str, str]:
    """{column: category} of what the guard flags."""
    found = find_personal_data_columns(
        headers, tags or [None] * len(headers), samples or [[] for _ in headers], **options
    )
    return {c.column: c.category for c in found}


@pytest.mark.parametrize(
    ("header", "category"),
    [
        ("First Name", "name"), ("last_name", "name"), ("fullName", "name"), ("Nom", "name"),
        ("Prénom", "name"), ("Nombre", "name"), ("Nombre y apellidos", "name"),
        ("Beneficiary Name", "name"), ("key informant name", "name"), ("Surname", "name"),
        ("Phone", "phone"), ("Phone Number", "phone"), ("Téléphone", "phone"),
        ("mobile", "phone"), ("Contact number", "phone"), ("numero de telefono", "phone"),
        ("E-mail", "email"), ("contact email", "email"), ("Courriel", "email"),
        ("DOB", "date_of_birth"), ("Date of birth", "date_of_birth"),
        ("Fecha de nacimiento", "date_of_birth"), ("date de naissance", "date_of_birth"),
        ("Passport number", "document_number"), ("National ID", "document_number"),
        ("ID number", "document_number"), ("document_number", "document_number"),
        ("Tazkira", "document_number"), ("numero de documento", "document_number"),
    ],
)
def test_personal_data_headers_are_flagged(header: str, category: str) -> None:
    assert flagged([header]) == {header: category}


@pytest.mark.parametrize(
    "header",
    [
        "Name", "admin1Name", "admin2_name", "provider_admin1_name", "idpOriginAdmin1Name",
        "Site Name", "site_name", "Operation", "id", "nombre de personnes", "nombre de ménages",
        "mobile teams", "share with mobile phone", "share with national id", "% with passport",
        "shelter_type", "Shelter condition", "population", "children_share", "Sex", "Age",
        "numPresentIdpInd", "event_type", "fatalities", "latitude", "longitude", "Country",
    ],
)
def test_aggregate_and_place_headers_are_not_flagged(header: str) -> None:
    assert flagged([header]) == {}


def test_hxl_tags_decide_both_ways() -> None:
    assert flagged(["a", "b", "c"], ["#beneficiary+name", "#contact+name", "#contact+phone"]) == {
        "a": "name", "b": "name", "c": "phone"
    }
    # "Nom" over an admin-name tag is the name of a place (a French pcode list).
    assert flagged(["Nom", "Nombre"], ["#adm1+name", "#loc+name"]) == {}


def test_values_reveal_e_mail_addresses_and_phone_numbers() -> None:
    samples = [["someone@example.org", "n/a"], ["+93 70 123 4567", "+93701234568"],
               ["1 234 567", "12 345"], ["AF0101", "AF0102"]]
    assert flagged(["contact", "reach", "idps", "pcode"], samples=samples) == {
        "contact": "email", "reach": "phone"
    }


def test_coordinates_are_personal_only_in_files_about_victims_cases_or_shelters() -> None:
    victims = flagged(["victim_code", "latitude", "longitude", "district"])
    assert victims == {"latitude": "victim_location", "longitude": "victim_location"}
    safe_houses = flagged(["safe house", "lat", "lon"])
    assert set(safe_houses) == {"lat", "lon"}
    by_tag = flagged(["case_id", "y", "x"], ["#meta+id", "#geo+lat", "#geo+lon"])
    assert set(by_tag) == {"case_id", "y", "x"}
    # A site assessment with coordinates and shelter types is not about victims.
    sites = ["site_id", "Site Name", "latitude", "longitude", "shelter_type", "individuals"]
    assert flagged(sites) == {}


def test_declared_aggregate_columns_are_accepted() -> None:
    headers = ["victim_count", "lat", "lon", "Phone"]
    assert set(flagged(headers)) == {"lat", "lon", "Phone"}
    assert flagged(headers, aggregate_columns=["LAT", "lon", "phone"]) == {}


def test_every_shared_data_table_passes(shared_data: Path) -> None:
    """No false alarm on the real DTM, HAPI, ACLED, IPC, UNODC, pcode and HXL files."""
    files = sorted(shared_data.rglob("*.csv"))
    assert len(files) >= 13
    for path in files:
        table = read_table(path)
        samples = [list(table.data[c].unique()[:2000]) for c in table.columns]
        found = find_personal_data_columns(table.headers, table.tags, samples)
        assert found == [], f"{path.name}: {[str(c) for c in found]}"


def test_a_file_with_personal_data_is_refused_whole_unless_declared_aggregate(
    database_url: str, tmp_path: Path
) -> None:
    migrate(database_url)
    path = tmp_path / "beneficiaries.csv"
    path.write_text(
        "Full name,Phone,admin1Pcode,population\n"
        "Amina X,+93 70 123 4567,AF01,5\n"
        "Omar Y,+93 70 765 4321,AF02,7\n",
        encoding="utf-8",
    )
    mapping = tmp_path / "mapping.toml"
    mapping.write_text('period = 2024-01-01\n[variables]\npopulation = "population"\n')
    result = ingest(database_url, "--file", str(path), "--kind", "table",
                    "--mapping", str(mapping), code=1)
    assert "personal data" in result.output
    assert "'Full name'" in result.output and "'Phone'" in result.output
    assert "names" in result.output and "phone numbers" in result.output
    assert count(database_url, Observation) == 0 and count(database_url, Area) == 0
    batch = batches(database_url)[-1]
    assert batch.status == "refused"
    assert {c["column"] for c in batch.report["personal_data"]} == {"Full name", "Phone"}
    assert "Amina" not in str(batch.report)  # the report names columns, never their values

    # "mobile" here counts mobile teams per province: an aggregate the mapping declares.
    services = tmp_path / "services.csv"
    services.write_text("pcode,mobile,population\nAFG,3,100\n", encoding="utf-8")
    declared = tmp_path / "declared.toml"
    declared.write_text('period = 2024-01-01\naggregate_columns = ["mobile"]\n'
                        '[variables]\npopulation = "population"\n')
    ingest(database_url, "--file", str(services), "--kind", "table", "--mapping", str(mapping),
           code=1)
    ingest(database_url, "--file", str(services), "--kind", "table", "--mapping", str(declared))
    assert count(database_url, Observation) == 1
    assert [b.status for b in batches(database_url)] == ["refused", "refused", "succeeded"]
    assert count(database_url, IngestBatch) == 3
