"""FHIR R4 resources → source events (SPEC 3.1). Pure functions: no HTTP, no clock, no secret.

What is read from a resource is listed here and nowhere else; everything else in it (names, personal
identity numbers, phone numbers, addresses) is never looked at, so it cannot be copied:

- Encounter: id, status, period.start, class, type, subject (reference only), participant
  (type and individual reference), appointment (reference).
- Appointment: id, status, created, appointmentType, participant.actor (Patient reference only),
  meta.lastUpdated.
- Patient: managingOrganization and generalPractitioner (references and their identifiers).
- Practitioner: identifier with the HSA-id system, qualification.code.
- PractitionerRole: practitioner (reference), organization (reference), code.

People and cases are keyed by the FHIR reference (`Patient/123`) or, for practitioners, by their
HSA-id when the server gives one (`codes.HSA_ID_SYSTEMS`; so they match the listing export's doctor ids); the pipeline makes
pseudonyms of these keys. A patient's identifiers are never used as a key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime, time
from typing import Any, Callable
from zoneinfo import ZoneInfo

from ..base import SourceEvent
from . import codes

Resource = dict[str, Any]
Resolve = Callable[[str], "Resource | None"]  # "Type/id" → the resource, or None when it cannot be had

_REFERENCE = re.compile(r"(?:^|/)(?P<type>[A-Z][A-Za-z]+)/(?P<id>[A-Za-z0-9\-.]{1,64})(?:/_history/[^/]+)?$")


class Malformed(ValueError):
    """A resource that breaks a rule the mapping needs; the message names the rule, never a value."""


@dataclass(frozen=True)
class Tables:
    professions: dict[str, str]
    forms_by_type: dict[str, str]
    forms_by_class: dict[str, str]
    case_appointment_types: frozenset[str]
    default_channel: str
    channels_by_appointment_type: dict[str, str]
    listing_organizations: frozenset[str]
    noshow_closes_case: bool
    zone: ZoneInfo


@dataclass
class Mapped:
    events: list[SourceEvent] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # counter names: why an event was not made


# -- references ---------------------------------------------------------------------------------------


def reference_key(reference: Any) -> str | None:
    """`Type/id` of a literal reference (relative, absolute or versioned); None for anything else."""
    if not isinstance(reference, dict):
        return None
    text = reference.get("reference")
    if not isinstance(text, str) or text.startswith("#"):
        return None
    match = _REFERENCE.search(text.strip())
    return f"{match['type']}/{match['id']}" if match else None


def _reference_type(key: str | None) -> str | None:
    return key.split("/", 1)[0] if key else None


def _hsa_id(identifiers: Any) -> str | None:
    for identifier in identifiers if isinstance(identifiers, list) else [identifiers]:
        if isinstance(identifier, dict) and identifier.get("system") in codes.HSA_ID_SYSTEMS and isinstance(identifier.get("value"), str):
            return identifier["value"].strip() or None
    return None


def practitioner_key(reference: Any, resolve: Resolve) -> tuple[str | None, Resource | None, Resource | None]:
    """(key, Practitioner, PractitionerRole) for a reference to a Practitioner or a PractitionerRole.

    The key is the practitioner's HSA-id when known, else `Practitioner/id`."""
    key = reference_key(reference)
    role = None
    if _reference_type(key) == "PractitionerRole":
        role = resolve(key)  # type: ignore[arg-type]  # resolve takes any reference; None was ruled out above
        if role is None:
            return None, None, None
        reference = role.get("practitioner")
        key = reference_key(reference)
    if _reference_type(key) != "Practitioner":
        return None, None, role
    practitioner = resolve(key)  # type: ignore[arg-type]  # resolve takes any reference; None was ruled out above
    hsa = _hsa_id(reference.get("identifier") if isinstance(reference, dict) else None) or (_hsa_id(practitioner.get("identifier")) if practitioner else None)
    return hsa or key, practitioner, role


# -- codes --------------------------------------------------------------------------------------------


def _codings(concepts: Any) -> list[dict]:
    """The codings of one CodeableConcept, a list of them, or a bare Coding (Encounter.class)."""
    found: list[dict] = []
    for concept in concepts if isinstance(concepts, list) else [concepts]:
        if not isinstance(concept, dict):
            continue
        if "code" in concept and "coding" not in concept:
            found.append(concept)
        found += [c for c in concept.get("coding") or [] if isinstance(c, dict)]
    return found


def profession_of(practitioner: Resource | None, role: Resource | None, tables: Tables) -> str | None:
    """The role's code decides; else the practitioner's qualifications, the highest in priority."""
    if role is not None:
        found = codes.lookup(tables.professions, _codings(role.get("code")))
        if found:
            return found[0]
    if practitioner is not None:
        qualifications = practitioner.get("qualification")
        concepts = [q.get("code") for q in qualifications if isinstance(q, dict)] if isinstance(qualifications, list) else []
        found = codes.lookup(tables.professions, _codings(concepts))
        for profession in codes.PROFESSION_PRIORITY:
            if profession in found:
                return profession
    return None


def form_of(encounter: Resource, tables: Tables) -> str | None:
    found = codes.lookup(tables.forms_by_type, _codings(encounter.get("type")))
    if found:
        return found[0]
    found = codes.lookup(tables.forms_by_class, _codings(encounter.get("class")))
    return found[0] if found else None


# -- times --------------------------------------------------------------------------------------------


def parse_time(value: Any, what: str, zone: ZoneInfo) -> datetime:
    """A FHIR dateTime/instant as an aware datetime; a date alone means its midnight in `zone`."""
    if not isinstance(value, str) or not value.strip():
        raise Malformed(f"{what} is missing")
    text = value.strip().replace("Z", "+00:00")
    try:
        if len(text) == 10:
            return datetime.combine(date.fromisoformat(text), time(0, 0), zone)
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise Malformed(f"{what} is not a FHIR dateTime") from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=zone)


def last_updated(resource: Resource) -> datetime | None:
    meta = resource.get("meta")
    if not isinstance(meta, dict):
        return None
    try:
        moment = parse_time(meta.get("lastUpdated"), "meta.lastUpdated", ZoneInfo("UTC"))
    except Malformed:
        return None
    return moment


# -- patients -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PatientFacts:
    key: str  # Patient/id
    listed: bool
    fixed_doctor: str | None  # practitioner key


def patient_facts(key: str, resolve: Resolve, tables: Tables) -> PatientFacts | None:
    """Whether the patient is listed at this clinic and with which named doctor (Patient.generalPractitioner)."""
    patient = resolve(key)
    if patient is None:
        return None
    listed = _is_this_clinic(patient.get("managingOrganization"), tables)
    fixed_doctor = None
    for gp in patient.get("generalPractitioner") or []:
        if not isinstance(gp, dict):
            continue
        kind = _reference_type(reference_key(gp)) or gp.get("type")
        if kind == "Organization":
            listed = listed or _is_this_clinic(gp, tables)
        elif kind == "PractitionerRole":
            role = resolve(reference_key(gp))  # type: ignore[arg-type]  # resolve takes any reference; None was ruled out above
            listed = listed or (role is not None and _is_this_clinic(role.get("organization"), tables))
        if kind in ("Practitioner", "PractitionerRole") and fixed_doctor is None:
            fixed_doctor, _, _ = practitioner_key(gp, resolve)
            if fixed_doctor is None and kind == "Practitioner":
                fixed_doctor = _hsa_id(gp.get("identifier"))  # a logical reference by HSA-id
    return PatientFacts(key, listed, fixed_doctor)


def _is_this_clinic(reference: Any, tables: Tables) -> bool:
    """A reference to one of `listing_organizations`, by `Organization/id` or by its HSA-id."""
    if not isinstance(reference, dict):
        return False
    key = reference_key(reference)
    hsa = _hsa_id(reference.get("identifier"))
    return (key is not None and key in tables.listing_organizations) or (hsa is not None and hsa in tables.listing_organizations)


# -- resources → events -------------------------------------------------------------------------------


def _require_id(resource: Resource) -> str:
    value = resource.get("id")
    if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9\-.]{1,64}", value):
        raise Malformed("id is missing or not a FHIR id")
    return value


def _performer(encounter: Resource) -> Any:
    """The primary performer (PPRF), else the attender (ATND), else the first participant with an individual."""
    participants = [p for p in encounter.get("participant") or [] if isinstance(p, dict) and isinstance(p.get("individual"), dict)]
    for wanted in ("PPRF", "ATND"):
        for participant in participants:
            if any(c.get("code") == wanted for c in _codings(participant.get("type"))):
                return participant["individual"]
    return participants[0]["individual"] if participants else None


def encounter_events(encounter: Resource, resolve: Resolve, tables: Tables) -> Mapped:
    """A finished Encounter → `visit.completed`, and `care.assessed` when it fulfils an appointment that opened a case."""
    key = f"Encounter/{_require_id(encounter)}"
    result = Mapped()
    if encounter.get("status") != "finished":
        result.notes.append("not_finished")
        return result
    period = encounter.get("period")
    at = parse_time(period.get("start") if isinstance(period, dict) else None, "period.start", tables.zone)
    patient = reference_key(encounter.get("subject"))
    if _reference_type(patient) != "Patient":
        raise Malformed("subject is not a reference to a Patient (an identifier alone is not used)")
    performer = _performer(encounter)
    if performer is None:
        raise Malformed("no participant with an individual")
    practitioner, practitioner_resource, role = practitioner_key(performer, resolve)
    if practitioner is None:
        result.notes.append("practitioner_unresolved")
        return result
    profession = profession_of(practitioner_resource, role, tables)
    if profession is None:
        result.notes.append("unmapped_profession")
        return result
    facts = patient_facts(patient, resolve, tables)  # type: ignore[arg-type]  # resolve takes any reference; None was ruled out above
    if facts is None:
        result.notes.append("patient_unresolved")
        return result
    form = form_of(encounter, tables)
    refs = {"patient": ("patient", facts.key), "practitioner": ("practitioner", practitioner)}
    fields: dict[str, Any] = {"profession": profession, "listed": facts.listed, "fixed_doctor": None}
    if facts.fixed_doctor is not None:
        refs["fixed_doctor"] = ("practitioner", facts.fixed_doctor)
    if form is not None:
        fields["form"] = form
    else:
        result.notes.append("unmapped_form")
    result.events.append(SourceEvent("visit.completed", at, key, refs, fields))
    appointment = reference_key((encounter.get("appointment") or [None])[0] if isinstance(encounter.get("appointment"), list) else None)
    if _reference_type(appointment) == "Appointment" and form is not None:
        booked = resolve(appointment)  # type: ignore[arg-type]  # resolve takes any reference; None was ruled out above
        if booked is None:
            result.notes.append("appointment_unresolved")
        elif _opens_case(booked, tables):
            result.events.append(SourceEvent("care.assessed", at, key, {"case": ("case", appointment)}, {"profession": profession, "form": form}))  # type: ignore[dict-item]  # refs map a field to (kind, raw id); mypy widens the literal tuple
    return result


def _appointment_type(appointment: Resource) -> str | None:
    found = [c.get("code") for c in _codings(appointment.get("appointmentType")) if isinstance(c.get("code"), str)]
    return found[0] if found else None


def _opens_case(appointment: Resource, tables: Tables) -> bool:
    return not tables.case_appointment_types or _appointment_type(appointment) in tables.case_appointment_types


def appointment_events(appointment: Resource, resolve: Resolve, tables: Tables) -> Mapped:
    """An Appointment for a new problem → `care.contact` at `created`; cancelled (or no-show) → `care.cancelled`."""
    key = f"Appointment/{_require_id(appointment)}"
    result = Mapped()
    status = appointment.get("status")
    if not isinstance(status, str):
        raise Malformed("status is missing")
    if status in ("proposed", "entered-in-error"):
        result.notes.append("not_booked")
        return result
    if not _opens_case(appointment, tables):
        result.notes.append("not_a_case")
        return result
    patients = [reference_key(p.get("actor")) for p in appointment.get("participant") or [] if isinstance(p, dict)]
    patient = next((p for p in patients if _reference_type(p) == "Patient"), None)
    if patient is None:
        raise Malformed("no participant is a reference to a Patient")
    if appointment.get("created") is None:
        result.notes.append("no_created")
        return result
    at = parse_time(appointment.get("created"), "created", tables.zone)
    facts = patient_facts(patient, resolve, tables)
    if facts is None:
        result.notes.append("patient_unresolved")
        return result
    channel = tables.channels_by_appointment_type.get(_appointment_type(appointment) or "", tables.default_channel)
    case = {"case": ("case", key)}
    result.events.append(SourceEvent("care.contact", at, key, {**case, "patient": ("patient", facts.key)}, {"listed": facts.listed, "channel": channel}))
    if status == "cancelled" or (status == "noshow" and tables.noshow_closes_case):
        closed_at = last_updated(appointment) or at
        result.events.append(SourceEvent("care.cancelled", closed_at, key, case, {}))
    return result
