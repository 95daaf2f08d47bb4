"""Default code tables: which FHIR codes mean which profession, contact form and contact channel.

Keys are `system|code` (or `|code` for a code in any system); the connector config can add to or
override every table (`professions`, `forms_by_type`, `forms_by_class`). docs/collector.md lists them
for installers and region staff.
"""

from __future__ import annotations

from typing import Final

# Socialstyrelsen's code systems for legitimated occupations (HOSP, "legitimerad yrkesgrupp"; HSA
# carries the same two-letter codes as hsaTitle). HL7 Sweden basprofiler bind Practitioner.qualification
# to 1.2.752.116.3.1.3 in older and 1.2.752.116.3.1.1 in newer versions; both are read.
HOSP_LEGITIMATION: Final = "urn:oid:1.2.752.116.3.1.3"
HOSP_LEGITIMATION_SYSTEMS: Final = (HOSP_LEGITIMATION, "urn:oid:1.2.752.116.3.1.1")
# HSA-id of a person or unit (Practitioner.identifier): the system HL7 Sweden basprofiler name has
# changed between versions (1.2.752.29.4.19, now 1.2.752.29.6.2.1); RIV-TA uses 1.2.752.129.2.1.4.1.
HSA_ID_SYSTEMS: Final = ("urn:oid:1.2.752.29.4.19", "urn:oid:1.2.752.29.6.2.1", "urn:oid:1.2.752.129.2.1.4.1")
HSA_ID_SYSTEM: Final = HSA_ID_SYSTEMS[0]
SNOMED: Final = "http://snomed.info/sct"
HL7_PRACTITIONER_ROLE: Final = "http://terminology.hl7.org/CodeSystem/practitioner-role"
V3_ACT_CODE: Final = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
V2_APPOINTMENT_TYPE: Final = "http://terminology.hl7.org/CodeSystem/v2-0276"

# Only licensed professions can make the medical assessment (domain research 1.2); a code not in
# this table gives no `care.assessed` and no `visit.completed` (counted as `unmapped_profession`).
LEGITIMATION_CODES: Final[dict[str, str]] = {
    "LK": "doctor",  # läkare
    "SJ": "nurse",  # sjuksköterska
    "RS": "nurse",  # röntgensjuksköterska
    "BM": "other_licensed",  # barnmorska
    "FT": "physiotherapist",  # fysioterapeut
    "SG": "physiotherapist",  # sjukgymnast (the title before 2014)
    "PS": "psychologist",  # psykolog
    "AT": "occupational_therapist",  # arbetsterapeut
    "PT": "other_licensed",  # psykoterapeut
    "DT": "other_licensed",  # dietist
    "LO": "other_licensed",  # logoped
    "HK": "other_licensed",  # hälso- och sjukvårdskurator
}

PROFESSIONS: Final[dict[str, str]] = {
    # HOSP legitimation codes, in either system
    **{f"{system}|{code}": profession for system in HOSP_LEGITIMATION_SYSTEMS for code, profession in LEGITIMATION_CODES.items()},
    # HL7's example practitioner-role codes
    f"{HL7_PRACTITIONER_ROLE}|doctor": "doctor",
    f"{HL7_PRACTITIONER_ROLE}|nurse": "nurse",
    # SNOMED CT occupations
    f"{SNOMED}|158965000": "doctor",  # medical practitioner
    f"{SNOMED}|309343006": "doctor",  # physician
    f"{SNOMED}|224535009": "nurse",  # registered nurse
    f"{SNOMED}|106292003": "nurse",  # professional nurse
    f"{SNOMED}|36682004": "physiotherapist",
    f"{SNOMED}|59944000": "psychologist",
    f"{SNOMED}|80546007": "occupational_therapist",
}

# When a person has several mapped codes (both LK and SJ, say) and no role says which applies.
PROFESSION_PRIORITY: Final = ("doctor", "psychologist", "physiotherapist", "occupational_therapist", "nurse", "other_licensed")

# Encounter.type codes, checked before Encounter.class (the class cannot tell phone from video).
FORMS_BY_TYPE: Final[dict[str, str]] = {
    f"{SNOMED}|185317003": "phone",  # telephone encounter
    f"{SNOMED}|448337001": "video",  # telemedicine consultation with patient
    f"{SNOMED}|439708006": "home",  # home visit
}

# Encounter.class (v3 ActCode).
FORMS_BY_CLASS: Final[dict[str, str]] = {
    f"{V3_ACT_CODE}|AMB": "physical",  # ambulatory: a visit at the clinic
    f"{V3_ACT_CODE}|EMER": "physical",
    f"{V3_ACT_CODE}|HH": "home",  # home health
    f"{V3_ACT_CODE}|FLD": "home",  # field
    f"{V3_ACT_CODE}|VR": "video",  # virtual; map a type code where the system tells phone from video
}

# Appointment.appointmentType codes (v2-0276) that open a case (a new or worsened problem): FOLLOWUP
# (återbesök) and CHECKUP are outside the care guarantee.
CASE_APPOINTMENT_TYPES: Final = ("ROUTINE", "WALKIN", "EMERGENCY")
CHANNELS_BY_APPOINTMENT_TYPE: Final[dict[str, str]] = {"WALKIN": "visit"}


def lookup(table: dict[str, str], codings: list[dict]) -> list[str]:
    """The table's values for the codings, in coding order (`system|code` first, then `|code`)."""
    found = []
    for coding in codings:
        if not isinstance(coding, dict):
            continue
        system, code = str(coding.get("system") or ""), str(coding.get("code") or "")
        if not code:
            continue
        value = table.get(f"{system}|{code}") or table.get(f"|{code}")
        if value is not None:
            found.append(value)
    return found
