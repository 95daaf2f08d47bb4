"""A clinic's record system as a FHIR R4 server on loopback: Appointments and Encounters as they are written.

One HTTP server (`FhirServer`, stdlib `http.server` on 127.0.0.1) serves every FHIR clinic under
`/{tag}/r4`: searches by `_lastUpdated=ge…` with `_count`, `_include` and HAPI-style next pages
(`?_getpages=…`), reads (`/{Type}/{id}`) and `/metadata`, behind a bearer token.

What a clinic's record system (`FhirRecords`) holds:
- a contact for a new problem → an Appointment (`created` = the contact; type ROUTINE for phone, WALKIN
  for drop-in, DIGITAL and OTHER as local codes), cancelled later when the case is;
- an assessment → a finished Encounter fulfilling that Appointment, by a practitioner of the assessing
  profession (HOSP legitimation code) in the assessment's form (class or type);
- a visit → a finished Encounter without an appointment.
Patients are listed here (managingOrganization) or elsewhere, with their fixed doctor as
generalPractitioner. What a record system does not hold is left out: "the patient chose to wait"
(`care.excluded`), a second registration of the same contact, an assessment without any contact.
An Encounter typed in late with an earlier date (a data fault) is written when its contact exists.
"""

from __future__ import annotations

import bisect
import json
import secrets
import threading
from collections import OrderedDict
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable
from urllib.parse import parse_qsl, urlsplit
from zoneinfo import ZoneInfo

from ..intent import IntendedEvents, pseudonym
from . import Event, by_type, cases_of, epoch
from .listing_export import doctor_hsa_id

CONNECTOR = "fhir_r4"
HSA = "urn:oid:1.2.752.29.4.19"
HOSP = "urn:oid:1.2.752.116.3.1.3"
SNOMED = "http://snomed.info/sct"
LOCAL_FORMS = "urn:vardkoll:demo:kontaktform"
PROFESSION_CODES = {"doctor": "LK", "nurse": "SJ", "physiotherapist": "FT", "psychologist": "PS", "occupational_therapist": "AT", "other_licensed": "DT"}
APPOINTMENT_TYPES = {"phone": "ROUTINE", "visit": "WALKIN", "digital": "DIGITAL", "other": "OTHER"}
HERE, ELSEWHERE = "Organization/vardcentralen", "Organization/annan-vardgivare"
Resource = dict[str, Any]


def _form(form: str | None) -> dict[str, Any]:
    if form is None:
        return {}
    types = {
        "phone": (SNOMED, "185317003"),
        "video": (SNOMED, "448337001"),
        "home": (SNOMED, "439708006"),
        "chat": (LOCAL_FORMS, "chatt"),
        "letter": (LOCAL_FORMS, "brev"),
    }
    fields: dict[str, Any] = {"class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB" if form in ("physical", "phone") else "VR"}}
    if form in types:
        system, code = types[form]
        fields["type"] = [{"coding": [{"system": system, "code": code}]}]
    return fields


def _instant(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).isoformat().replace("+00:00", "Z")


class FhirRecords:
    name = "record system (FHIR R4)"

    def __init__(self, unit: str, tag: str, folder: Path, intent: IntendedEvents, zone: ZoneInfo, server: "FhirServer") -> None:
        self.unit, self.tag, self.intent, self.zone = unit, tag, intent, zone
        self.token_file = folder / "fhir-token"
        folder.mkdir(parents=True, exist_ok=True)
        self.token_file.write_text(server.token + "\n")
        self.token_file.chmod(0o600)
        self.base_url = f"{server.base_url}/{tag}/r4"
        self.lock = threading.Lock()
        self.resources: dict[str, Resource] = {}
        self.written_up_to: float | None = None  # the newest lastUpdated given: this server's "now", which a search reports
        self._timeline: dict[str, list[tuple[float, str]]] = {"Encounter": [], "Appointment": []}
        server.add(self)

    def connectors(self) -> str:
        return f"""
[[connectors]]
type = "fhir_r4"
base_url = "{self.base_url}"
token_file = "{self.token_file}"
listing_organizations = ["{HERE}"]
interval_s = 2
page_size = 200
initial_lookback_days = 40
case_appointment_types = ["ROUTINE", "WALKIN", "DIGITAL", "OTHER"]
channels_by_appointment_type = {{ ROUTINE = "phone", WALKIN = "visit", DIGITAL = "digital", OTHER = "other" }}
forms_by_type = {{ "{LOCAL_FORMS}|chatt" = "chat", "{LOCAL_FORMS}|brev" = "letter" }}
"""

    # -- the records --------------------------------------------------------------------------------

    def _put(self, resource: Resource, updated: float | None = None) -> None:
        key = f"{resource['resourceType']}/{resource['id']}"
        if updated is not None:
            resource["meta"] = {"versionId": str(int(self.resources.get(key, {}).get("meta", {}).get("versionId", "0")) + 1), "lastUpdated": _instant(updated)}
        with self.lock:
            self.resources[key] = resource
            if updated is not None:
                self._timeline[resource["resourceType"]].append((updated, key))
                self.written_up_to = updated if self.written_up_to is None else max(self.written_up_to, updated)

    def _practitioner(self, ident: str, profession: str) -> str:
        key = f"Practitioner/{ident}"
        if key not in self.resources:
            self._put(
                {
                    "resourceType": "Practitioner",
                    "id": ident,
                    "identifier": [{"system": HSA, "value": doctor_hsa_id(self.unit, ident)}],
                    "qualification": [{"code": {"coding": [{"system": HOSP, "code": PROFESSION_CODES[profession]}]}}],
                }
            )
        return ident

    def _patient(self, ident: str, listed: bool, doctor: str | None) -> str:
        if f"Patient/{ident}" not in self.resources:
            patient: Resource = {"resourceType": "Patient", "id": ident, "managingOrganization": {"reference": HERE if listed else ELSEWHERE}}
            if doctor is not None:
                patient["generalPractitioner"] = [{"reference": f"Practitioner/{self._practitioner(doctor, 'doctor')}"}]
            self._put(patient)
        return ident

    def plan(self, events: list[Event]) -> list[tuple[float, Callable[[], bool | None]]]:
        writes: list[tuple[float, Callable[[], bool | None]]] = []
        visits = by_type(events, "visit.completed")
        doctor_of = {v["patient"]: v["fixed_doctor"] for v in visits if v["listed"] and v.get("fixed_doctor")}
        self._doctor_of = doctor_of

        def patient_for(patient: str | None, listed: bool, fallback: str) -> str:
            if patient is None:
                return self._patient(fallback, listed, None)
            return self._patient(patient, True, doctor_of.get(patient)) if listed else self._patient(patient + "-x", False, None)

        for case in cases_of(events):
            if not case.contacts:
                continue  # an assessment without contact: the record system has nothing to hang it on
            contact = case.contacts[0]
            opened = epoch(contact)
            patient = patient_for(contact.get("patient"), contact["listed"], f"anon-{case.case}")
            appointment = {
                "resourceType": "Appointment",
                "id": case.case,
                "status": "booked",
                "created": contact["at"],
                "appointmentType": {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0276", "code": APPOINTMENT_TYPES[contact["channel"]]}]},
                "participant": [{"actor": {"reference": f"Patient/{patient}"}, "status": "accepted"}],
            }
            writes.append((opened, lambda a=appointment, t=opened: self._write_appointment(a, t)))
            for number, assessed in enumerate(case.assessed):
                assessor = self._practitioner(f"bed-{PROFESSION_CODES[assessed['profession']].lower()}", assessed["profession"])
                encounter = self._encounter(f"{case.case}-b{number}", assessed, assessor, patient, case.case)
                written = max(epoch(assessed), opened)
                writes.append((written, lambda e=encounter, t=written: self._write_encounter(e, t)))
            if case.cancelled is not None and not any(epoch(a) <= epoch(case.cancelled) for a in case.assessed):
                cancelled_at = max(epoch(case.cancelled), opened)
                writes.append((cancelled_at, lambda a=appointment, t=cancelled_at: self._write_appointment({**a, "status": "cancelled"}, t)))
        for number, visit in enumerate(visits):
            profession = visit["profession"]
            ident = visit["practitioner"] if profession == "doctor" else f"{visit['practitioner']}-{PROFESSION_CODES[profession].lower()}"
            practitioner = self._practitioner(ident, profession)
            patient = patient_for(visit["patient"], visit["listed"], visit["patient"])
            encounter = self._encounter(f"besok-{number}", visit, practitioner, patient, None)
            visited = epoch(visit)
            writes.append((visited, lambda e=encounter, t=visited: self._write_encounter(e, t)))
        return writes

    def _encounter(self, ident: str, event: Event, practitioner: str, patient: str, appointment: str | None) -> Resource:
        encounter: Resource = {
            "resourceType": "Encounter",
            "id": ident,
            "status": "finished",
            **_form(event.get("form")),
            "period": {"start": event["at"]},
            "participant": [
                {
                    "type": [{"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType", "code": "PPRF"}]}],
                    "individual": {"reference": f"Practitioner/{practitioner}"},
                }
            ],
            "subject": {"reference": f"Patient/{patient}"},
        }
        if appointment is not None:
            encounter["appointment"] = [{"reference": f"Appointment/{appointment}"}]
        return encounter

    # -- writing, and what each write means ---------------------------------------------------------

    def _patient_facts(self, patient: str) -> tuple[bool, str | None]:
        resource = self.resources[f"Patient/{patient}"]
        listed = resource["managingOrganization"]["reference"] == HERE
        doctors = resource.get("generalPractitioner") or []
        doctor = doctors[0]["reference"].split("/", 1)[1] if doctors else None
        return listed, doctor_hsa_id(self.unit, doctor) if doctor else None

    def _write_appointment(self, appointment: Resource, written: float) -> None:
        self._put(dict(appointment), written)
        key = f"Appointment/{appointment['id']}"
        case = {"case": pseudonym("case", key)}
        patient = appointment["participant"][0]["actor"]["reference"]
        listed, _ = self._patient_facts(patient.split("/", 1)[1])
        channel = next(c for c, code in APPOINTMENT_TYPES.items() if code == appointment["appointmentType"]["coding"][0]["code"])
        self.intent.add(
            self.unit,
            CONNECTOR,
            key,
            "care.contact",
            datetime.fromisoformat(appointment["created"]),
            patient=pseudonym("patient", patient),
            listed=listed,
            channel=channel,
            **case,
        )
        if appointment["status"] == "cancelled":
            self.intent.add(self.unit, CONNECTOR, key, "care.cancelled", datetime.fromtimestamp(written, timezone.utc), **case)

    def _write_encounter(self, encounter: Resource, written: float) -> None:
        self._put(dict(encounter), written)
        key = f"Encounter/{encounter['id']}"
        at = datetime.fromisoformat(encounter["period"]["start"])
        practitioner = self.resources[encounter["participant"][0]["individual"]["reference"]]
        profession = next(p for p, code in PROFESSION_CODES.items() if code == practitioner["qualification"][0]["code"]["coding"][0]["code"])
        patient = encounter["subject"]["reference"]
        listed, doctor = self._patient_facts(patient.split("/", 1)[1])
        form = _form_of(encounter)
        fields: dict[str, Any] = {"profession": profession, "listed": listed, "fixed_doctor": pseudonym("practitioner", doctor) if doctor else None}
        if form is not None:
            fields["form"] = form
        self.intent.add(
            self.unit,
            CONNECTOR,
            key,
            "visit.completed",
            at,
            patient=pseudonym("patient", patient),
            practitioner=pseudonym("practitioner", practitioner["identifier"][0]["value"]),
            **fields,
        )
        if "appointment" in encounter and form is not None:
            case = pseudonym("case", encounter["appointment"][0]["reference"])
            self.intent.add(self.unit, CONNECTOR, key, "care.assessed", at, case=case, profession=profession, form=form)

    # -- searching ----------------------------------------------------------------------------------

    def search(self, resource_type: str, since: float | None) -> tuple[list[str], float | None]:
        """The matching keys, and when the search ran (the newest write so far), as a real server's Bundle says."""
        with self.lock:
            timeline = self._timeline.get(resource_type, [])
            start = bisect.bisect_left(timeline, (since, "")) if since is not None else 0
            found: OrderedDict[str, None] = OrderedDict()
            for updated, key in timeline[start:]:
                current = self.resources[key]["meta"]["lastUpdated"]
                if current == _instant(updated):  # an older version's place in the timeline is skipped
                    found[key] = None
            return list(found), self.written_up_to

    def included(self, keys: list[str]) -> list[Resource]:
        """Patients, their fixed doctors, practitioners and appointments the matches refer to."""
        wanted: OrderedDict[str, None] = OrderedDict()
        with self.lock:
            for key in keys:
                resource = self.resources[key]
                references = [
                    resource.get("subject"),
                    *(p.get("individual") for p in resource.get("participant", [])),
                    *(p.get("actor") for p in resource.get("participant", [])),
                    *(resource.get("appointment") or []),
                ]
                for reference in references:
                    if isinstance(reference, dict) and reference.get("reference") in self.resources:
                        wanted[reference["reference"]] = None
                        for doctor in self.resources[reference["reference"]].get("generalPractitioner") or []:
                            wanted[doctor["reference"]] = None
            return [self.resources[key] for key in wanted if key not in keys]

    def tick(self, now: float, catching_up: bool) -> bool:
        return True

    def close(self) -> None:
        pass


def _form_of(encounter: Resource) -> str | None:
    for concept in encounter.get("type") or []:
        code = concept["coding"][0]["code"]
        return {"185317003": "phone", "448337001": "video", "439708006": "home", "chatt": "chat", "brev": "letter"}[code]
    if "class" in encounter:
        return "physical"
    return None


class FhirServer:
    """The loopback HTTP server in front of every clinic's `FhirRecords`."""

    PAGES_KEPT = 256

    def __init__(self) -> None:
        self.token = "demo-" + secrets.token_urlsafe(18)
        self._clinics: dict[str, FhirRecords] = {}
        self._pages: OrderedDict[str, tuple[FhirRecords, str, list[str], float | None]] = OrderedDict()
        self._pages_lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
                parts = urlsplit(self.path)
                status, body = outer.respond(parts.path, parse_qsl(parts.query), self.headers.get("Authorization"))
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *args: Any) -> None:
                pass

        self._http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._http.daemon_threads = True
        self.base_url = f"http://127.0.0.1:{self._http.server_address[1]}"
        self._thread = threading.Thread(target=self._http.serve_forever, name="demo-fhir", daemon=True)

    def add(self, clinic: FhirRecords) -> None:
        self._clinics[clinic.tag] = clinic

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(5)

    @staticmethod
    def _outcome(code: str) -> dict[str, Any]:
        return {"resourceType": "OperationOutcome", "issue": [{"severity": "error", "code": code}]}

    def respond(self, path: str, query: list[tuple[str, str]], authorization: str | None) -> tuple[int, dict[str, Any]]:
        if authorization != f"Bearer {self.token}":
            return 401, self._outcome("login")
        steps = path.strip("/").split("/")
        clinic = self._clinics.get(steps[0]) if len(steps) >= 2 and steps[1] == "r4" else None
        if clinic is None:
            return 404, self._outcome("not-found")
        rest, params = steps[2:], dict(query)
        if rest == ["metadata"]:
            return 200, {"resourceType": "CapabilityStatement", "status": "active", "fhirVersion": "4.0.1", "kind": "instance", "format": ["json"]}
        if not rest and "_getpages" in params:
            with self._pages_lock:
                page = self._pages.get(params["_getpages"])
            if page is None or page[0] is not clinic:
                return 410, self._outcome("expired")
            return 200, self._bundle(
                clinic, page[1], page[2], page[3], params["_getpages"], int(params.get("_getpagesoffset", 0)), int(params.get("_count", 100))
            )
        if len(rest) == 1 and rest[0] in ("Encounter", "Appointment"):
            since = None
            for name, value in query:
                if name == "_lastUpdated" and value.startswith("ge"):
                    since = datetime.fromisoformat(value[2:].replace("Z", "+00:00")).timestamp()
            keys, searched_at = clinic.search(rest[0], since)
            token = secrets.token_urlsafe(12)
            with self._pages_lock:
                self._pages[token] = (clinic, rest[0], keys, searched_at)
                while len(self._pages) > self.PAGES_KEPT:
                    self._pages.popitem(last=False)
            return 200, self._bundle(clinic, rest[0], keys, searched_at, token, 0, int(params.get("_count", 100)))
        if len(rest) == 2:
            resource = clinic.resources.get(f"{rest[0]}/{rest[1]}")
            return (200, resource) if resource is not None else (404, self._outcome("not-found"))
        return 404, self._outcome("not-found")

    def _bundle(
        self, clinic: FhirRecords, resource_type: str, keys: list[str], searched_at: float | None, token: str, offset: int, count: int
    ) -> dict[str, Any]:
        page = keys[offset : offset + count]
        base = clinic.base_url
        with clinic.lock:
            matches = [clinic.resources[key] for key in page]
        entries = [{"fullUrl": f"{base}/{m['resourceType']}/{m['id']}", "resource": m, "search": {"mode": "match"}} for m in matches]
        entries += [{"fullUrl": f"{base}/{r['resourceType']}/{r['id']}", "resource": r, "search": {"mode": "include"}} for r in clinic.included(page)]
        links = [{"relation": "self", "url": f"{base}/{resource_type}"}]
        if offset + count < len(keys):
            links.append({"relation": "next", "url": f"{base}?_getpages={token}&_getpagesoffset={offset + count}&_count={count}"})
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "total": len(keys), "link": links, "entry": entries}
        if searched_at is not None:
            bundle["meta"] = {"lastUpdated": _instant(searched_at)}  # when the search ran, as HAPI says it
        return bundle
