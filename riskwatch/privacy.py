"""Privacy rules in one place: sensitive variables, small-count suppression, sensitivity labels.

Trafficking data can endanger survivors and responders. riskwatch keeps admin-area aggregates
only; counts of trafficking cases or victims are *sensitive*: wherever they are shown or exported,
a count below the configured threshold (``privacy.small_count_threshold``) is suppressed.
Public event counts (e.g. ``abduction_events``) are not. The UI, the exports and the alerts all
call these functions; none re-implements them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

# Variables that count trafficking cases or victims (CONTRACTS.md: e.g. ``ct_cases``). A mapping
# may add its own with a name matching SENSITIVE_PATTERN.
SENSITIVE_VARIABLES = frozenset({"ct_cases", "ct_victims", "ct_referrals", "vot_identified"})
SENSITIVE_PATTERN = re.compile(r"^(ct_(cases|victims)(_|$)|vot_)")


# Error texts (an SMTP or HTTP error) may carry a webhook's token in a URL or an address.
_URL = re.compile(r"[a-z][a-z0-9+.-]*://[^\s'\"<>]+", re.IGNORECASE)
_EMAIL = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
MAX_ERROR_CHARS = 200


def redact(text: str | None) -> str:
    """An error text without URLs (which may carry tokens) or e-mail addresses, shortened."""
    if not text:
        return ""
    cleaned = _EMAIL.sub("[address]", _URL.sub("[url]", text))
    return cleaned if len(cleaned) <= MAX_ERROR_CHARS else cleaned[: MAX_ERROR_CHARS - 1] + "…"


def is_sensitive(variable: str) -> bool:
    """True for variables that count trafficking cases or victims."""
    return variable in SENSITIVE_VARIABLES or bool(SENSITIVE_PATTERN.match(variable))


def suppress_small_counts(
    frame: pd.DataFrame,
    threshold: int,
    *,
    value_column: str = "value",
    variable_column: str = "variable",
) -> pd.DataFrame:
    """A copy with small counts of sensitive variables blanked (zero stays zero).

    A zero is shown: it reveals no case. 1..threshold-1 cases could identify people and are
    replaced by an empty value; the ``suppressed`` column says which rows were blanked.
    """
    out = frame.copy()
    sensitive = out[variable_column].astype(str).map(is_sensitive)
    values = pd.to_numeric(out[value_column], errors="coerce")
    small = sensitive & values.gt(0) & values.lt(threshold)
    out[value_column] = values.where(~small)
    out["suppressed"] = small
    return out


def sensitivity_label(variables: list[str] | set[str], threshold: int) -> str:
    """The label every export carries, naming what was protected and how."""
    base = ("Sensitivity: restricted humanitarian data. Admin-area aggregates only; no personal "
            "data. Share only with organisations working on protection in this response.")
    if any(is_sensitive(v) for v in variables):
        return base + (f" Counts of trafficking cases or victims below {threshold} are "
                       "suppressed.")
    return base


# --- personal data in input files --------------------------------------------------------------
# riskwatch accepts admin-area aggregates only (DESIGN.md: "no personal data accepted"). Before a
# file is read, its columns are checked here; a file with a column that looks like personal data
# is refused whole, naming each column and why, unless the source declares the column aggregate.
#
# The rules are deliberately precise, because a false alarm on a real DTM, HAPI or ACLED file is
# as harmful as a miss is dangerous: "Name" or "admin1Name" (the name of an area), "nombre de
# personnes" (French for *number* of people), "id" (a row id), "shelter type" (a site assessment
# column) and site coordinates are not personal data.

PERSONAL_DATA_CATEGORIES = (
    "name", "phone", "email", "date_of_birth", "document_number", "victim_location",
)


@dataclass(frozen=True)
class PersonalDataColumn:
    """A column that looks like personal data: which one, what kind, and why it was flagged."""

    column: str  # header as written in the file
    category: str  # one of PERSONAL_DATA_CATEGORIES
    reason: str  # one sentence a data manager understands

    def __str__(self) -> str:
        return f"column {self.column!r}: {self.reason}"


def _words(text: str) -> str:
    """A header as lower-case ASCII words: ``"Fecha_de-Nacimiento"`` -> ``fecha de nacimiento``."""
    spaced = re.sub(r"([a-z])([A-Z])", r"\1 \2", text)  # camelCase -> camel Case
    ascii_text = (
        unicodedata.normalize("NFKD", spaced).encode("ascii", "ignore").decode("ascii").lower()
    )
    return " ".join(re.findall(r"[a-z0-9]+", ascii_text))


# Whole headers (as words) that name a person. Person-role words before "name" catch
# "beneficiary name", "victim_full_name", "key informant name", "head of household name".
_PERSON_ROLES = (
    r"first|last|full|given|family|middle|maiden|sur|fore|christian|"
    r"beneficiary|beneficiaries|victim|victims|survivor|survivors|person|persons|respondent|"
    r"client|patient|child|children|mother|father|parent|guardian|spouse|husband|wife|"
    r"household head|head of household|head of the household|hh head|hoh|informant|"
    r"key informant|ki|focal point|contact|contact person|caller|case|individual|migrant|"
    r"enumerator|interviewer|staff|worker|caseworker|case worker|witness|perpetrator|suspect|"
    r"trafficker|recruiter|employer|owner|landlord|applicant|member|reporter|referred person"
)
_NAME_HEADER = re.compile(
    rf"^(?:(?:{_PERSON_ROLES})(?: s)? (?:full |first |last |given |family )?names?"
    r"|firstname|lastname|fullname|surname|surnames|forename|forenames|givenname|familyname"
    r"|name of (?:the )?(?:beneficiary|victim|survivor|person|respondent|child|head of household)"
    # French: nom, prenom, nom de famille, nom et prenom, nom complet, nom du/de la <person>
    r"|noms?|prenoms?|nom de famille|nom et prenoms?|nom prenoms?|nom complet|nom s"
    r"|nom (?:du |de la |de l )?(?:beneficiaire|victime|survivant|survivante|personne|enfant"
    r"|chef de menage|repondant|informateur)"
    # Spanish and Portuguese: nombre(s), apellido(s), nome, sobrenome. "nombre de ..." is French
    # for "number of ..." and is not matched.
    r"|nombres?|apellidos?|nombre completo|nombres? y apellidos?|nombre apellido"
    r"|nombre del (?:beneficiario|nino|jefe de hogar|encuestado)|nombre de la (?:victima|persona)"
    r"|nome|nome completo|sobrenome|apelido)$"
)
_NUMBER_WORD = r"(?: (?:no|nr|nos|num|number|numbers|numero|\d))?"
_PHONE_HEADER = re.compile(
    rf"^(?:(?:{_PERSON_ROLES}|personal|private|home|work|alternative|alt)(?: s)? )?"
    r"(?:phone|telephone|telefono|telefone|tel|tlf|cellphone|cell phone|mobile phone|celular|"
    r"movil|whatsapp|msisdn|mobile|cell|portable|gsm)" + _NUMBER_WORD + "$"
    r"|^(?:numero|no|num|n) (?:de |du )?(?:telephone|telefono|telefone|celular|portable|movil)$"
    r"|^(?:contact|mobile|cell) (?:no|nr|num|number|numero)$"
)
_EMAIL_HEADER = re.compile(
    rf"^(?:(?:{_PERSON_ROLES}|personal|private|contact|work)(?: s)? )?"
    r"(?:e ?mail|e ?mail address|email address|courriel|correo|correo electronico)$"
)
_DOB_HEADER = re.compile(
    rf"^(?:(?:{_PERSON_ROLES})(?: s)? )?"
    r"(?:dob|d o b|date of birth|birth ?date|birthday|born on|date born"
    r"|fecha de nacimiento|fecha nacimiento|f nacimiento|date de naissance|data de nascimento"
    r"|geburtsdatum)$"
)
# Identity and document numbers. A whole-header match (optionally after a person word), so that
# an aggregate such as "share with national id" or "% with passport" is not mistaken for one.
_DOCUMENT_HEADER = re.compile(
    rf"^(?:(?:{_PERSON_ROLES})(?: s)? )?"
    r"(?:(?:passport|passeport|pasaporte|passaporte)(?: (?:no|nr|num|number|numero|id))?"
    r"|national id(?: (?:no|nr|number|card|card number))?|nid|national identity number"
    r"|national identification number|id number|id no|id nr|id num|id card number"
    r"|identity number|identity card number|identity document number|document number"
    r"|document no|doc number|doc no|numero de documento|numero documento|numero de cedula"
    r"|cedula|cedula de identidad|dni|nin|ssn|social security number"
    r"|(?:tazkira|tazkera|tazkirah|taskera)(?: (?:no|nr|number))?"
    r"|numero d identite|numero de passeport|numero de la carte d identite"
    r"|unhcr id|progres id|proges id|refugee id|case number|case id|case no|case code)$"
)
# Headers that say a file is about victims, survivors, cases or their shelters: coordinates in
# such a file locate people who must not be found. "Shelter" alone is not enough: site
# assessments describe shelter types and conditions.
_VICTIM_CONTEXT = re.compile(
    r"(?:^| )(?:victim|victims|vot|vots|survivor|survivors|safe house|safehouse|safe houses|"
    r"safe shelter|shelter name|shelter id|shelter code|shelter address|shelter location|"
    r"name of shelter|shelter for victims|womens shelter|women s shelter|case|cases|"
    r"casework|victima|victimas|victime|victimes|sobreviviente|sobrevivientes|survivant|"
    r"survivante|casa de acogida|maison d accueil)(?: |$)"
)
_LATITUDE_HEADER = re.compile(r"^(?:.* )?(?:latitude|lat)$|^y coord(?:inate)?$")
_LONGITUDE_HEADER = re.compile(r"^(?:.* )?(?:longitude|lon|lng)$|^long$|^x coord(?:inate)?$")

# Values: an e-mail address, or an international phone number (+ or 00, 8 to 15 digits). Local
# numbers without a prefix look like figures written with spaces ("1 234 567"), so only the
# header tells those.
_EMAIL_VALUE = re.compile(r"[A-Za-z0-9._%+'-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_PHONE_VALUE = re.compile(r"(?:\+|00)\d[\d ().-]{6,20}\d")
#: Share of a column's non-empty sample values that must look like phone numbers.
PHONE_VALUE_SHARE = 0.5

_PERSON_TAGS = frozenset({"beneficiary", "contact", "respondent", "victim", "survivor", "person"})
# An HXL tag that says a column names a place or an organisation overrides a header that could
# also name a person ("Nom" or "Nombre" over ``#adm1+name`` in a French or Spanish pcode list).
_PLACE_TAG = re.compile(r"adm\d?|country|loc|site|org|operation|sector|region|settlement")


def _tag_parts(tag: str | None) -> tuple[str, frozenset[str]]:
    if not tag:
        return "", frozenset()
    name, *attributes = re.sub(r"\s+", "", tag).lower().lstrip("#").split("+")
    return name, frozenset(attributes)


def _by_tag(tag: str | None) -> tuple[str, str] | None:
    """(category, reason) when an HXL tag says personal data."""
    name, attributes = _tag_parts(tag)
    if name in _PERSON_TAGS and "name" in attributes:
        return "name", f"its HXL tag {tag} names a person"
    if name == "contact" and attributes & {"phone", "mobile", "tel"}:
        return "phone", f"its HXL tag {tag} holds phone numbers"
    if name == "contact" and "email" in attributes:
        return "email", f"its HXL tag {tag} holds e-mail addresses"
    if name == "date" and attributes & {"birth", "dob"}:
        return "date_of_birth", f"its HXL tag {tag} holds dates of birth"
    return None


def _by_header(words: str) -> tuple[str, str] | None:
    """(category, reason) when a header (as words) says personal data."""
    if _NAME_HEADER.fullmatch(words):
        return "name", "its header says it holds people's names"
    if _DOB_HEADER.fullmatch(words):
        return "date_of_birth", "its header says it holds dates of birth"
    if _EMAIL_HEADER.fullmatch(words):
        return "email", "its header says it holds e-mail addresses"
    if _DOCUMENT_HEADER.fullmatch(words):
        return "document_number", "its header says it holds identity, document or case numbers"
    if _PHONE_HEADER.fullmatch(words):
        return "phone", "its header says it holds phone numbers"
    return None


def _by_values(values: Sequence[object]) -> tuple[str, str] | None:
    """(category, reason) when the sample values are e-mail addresses or phone numbers."""
    texts = [str(v).strip() for v in values if v is not None and str(v).strip()]
    if not texts:
        return None
    emails = [t for t in texts if _EMAIL_VALUE.fullmatch(t)]
    if emails:
        what = "value is an e-mail address" if len(emails) == 1 else "values are e-mail addresses"
        return "email", f"{len(emails)} of its {what}"
    phones = sum(
        1 for t in texts
        if _PHONE_VALUE.fullmatch(t) and 8 <= sum(c.isdigit() for c in t) <= 15
    )
    if phones and phones >= PHONE_VALUE_SHARE * len(texts):
        return "phone", f"{phones} of its {len(texts)} sampled values are phone numbers"
    return None


def _is_declared(header: str, tag: str | None, declared: set[str]) -> bool:
    keys = {header.strip().lower(), _words(header)}
    if tag:
        keys.add(re.sub(r"\s+", "", tag).lower())
    return bool(keys & declared)


def find_personal_data_columns(
    headers: Sequence[str],
    hxl_tags: Sequence[str | None],
    sample_values: Sequence[Sequence[object]],
    *,
    aggregate_columns: Iterable[str] = (),
) -> list[PersonalDataColumn]:
    """The columns of a table that look like personal data (empty list: none).

    ``hxl_tags`` and ``sample_values`` are per column, in the order of ``headers`` (a tag may be
    None; a column's sample may be empty). Flagged: names (first/last/full name, nom, nombre,
    beneficiary name, ``#beneficiary+name``, ``#contact+name``...), phone numbers (by header, or
    when most sampled values are international numbers), e-mail addresses (by header or by any
    value), dates of birth, identity and document numbers, and latitude/longitude columns in a
    file whose headers speak of victims, survivors, cases, shelters of victims or safe houses.
    Columns named (by header or HXL tag, any case) in ``aggregate_columns`` are exempt: the
    source has declared that they hold aggregates, not people's data.
    """
    declared = {c.strip().lower() for c in aggregate_columns}
    declared |= {_words(c) for c in aggregate_columns}
    tags = list(hxl_tags) + [None] * (len(headers) - len(hxl_tags))
    samples = list(sample_values) + [()] * (len(headers) - len(sample_values))
    words = [_words(h) for h in headers]
    found: list[PersonalDataColumn] = []
    for header, tag, sample, header_words in zip(headers, tags, samples, words, strict=True):
        if _is_declared(header, tag, declared):
            continue
        verdict = _by_tag(tag) or _by_header(header_words) or _by_values(sample)
        if verdict and verdict[0] == "name" and _PLACE_TAG.fullmatch(_tag_parts(tag)[0]):
            verdict = None
        if verdict is not None:
            found.append(PersonalDataColumn(header, *verdict))

    context = next((h for h, w in zip(headers, words, strict=True)
                    if _VICTIM_CONTEXT.search(w)), None)
    if context is not None:
        flagged = {c.column for c in found}
        for header, tag, header_words in zip(headers, tags, words, strict=True):
            name, attributes = _tag_parts(tag)
            is_coordinate = (
                _LATITUDE_HEADER.fullmatch(header_words)
                or _LONGITUDE_HEADER.fullmatch(header_words)
                or (name == "geo" and attributes & {"lat", "lon", "coord"})
            )
            if is_coordinate and header not in flagged and not _is_declared(header, tag, declared):
                found.append(PersonalDataColumn(
                    header, "victim_location",
                    f"coordinates in a file about victims, cases or shelters (column {context!r}) "
                    "can locate individual people",
                ))
    return found
