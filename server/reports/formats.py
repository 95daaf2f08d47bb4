"""The report as files: CSV that Swedish Excel opens as is, XLSX and JSON.

CSV: UTF-8 with a byte order mark (Excel then reads å, ä, ö right), `;` between fields and a decimal
comma, as Excel with Swedish settings expects. Hidden cells say "färre än 20" in CSV and XLSX; in
JSON they are null and named in the line's `suppressed`.
"""

from __future__ import annotations

import csv
import io
from typing import Any, Mapping

import orjson
from openpyxl import Workbook

from .suppression import HIDDEN

# (field, heading) in column order.
COLUMNS = (
    ("unit", "HSA-id"),
    ("name", "Enhet"),
    ("ownership", "Ägarform"),
    ("municipality_code", "Kommunkod"),
    ("section", "Mått"),
    ("group", "Yrkesgrupp"),
    ("form", "Kontaktform"),
    ("calls", "Samtal"),
    ("same_day", "Kontakt samma dag"),
    ("completed", "Genomförda första kontakter"),
    ("wait_0", "Väntan 0 dagar"),
    ("wait_0_3", "Väntan 0–3 dagar"),
    ("wait_0_7", "Väntan 0–7 dagar"),
    ("excluded", "Exkluderade"),
    ("listed", "Listade"),
    ("named_doctor", "Med namngiven fast läkare"),
    ("share", "Andel"),
    ("definition_version", "Definitionsversion"),
    ("as_known_at", "Som känt per"),
)
WORDS = {
    "telephone": "telefontillgänglighet",
    "assessment": "medicinsk bedömning inom 3 dagar",
    "fixed_doctor": "fast läkarkontakt",
    "doctor": "läkare",
    "other_licensed": "annan legitimerad",
    "all": "alla",
    "physical": "fysiskt besök",
    "phone": "telefon",
    "video": "video",
    "chat": "chatt",
    "letter": "brev",
    "home": "hembesök",
    "unknown": "okänd",
}
MEDIA_TYPES = {"json": "application/json", "csv": "text/csv; charset=utf-8", "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"}


def _cell(line: Mapping[str, Any], field: str) -> Any:
    """The cell's value for a spreadsheet: a number, a word, "färre än 20" or None (not this line's)."""
    if field in line.get("suppressed", ()):
        return HIDDEN
    value = line.get(field)
    return WORDS.get(value, value) if field in ("section", "group", "form") else value


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.4f}".replace(".", ",")
    return str(value)


def to_csv(report: Mapping[str, Any]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow([heading for _, heading in COLUMNS])
    for line in report["lines"]:
        writer.writerow([_csv_text(_cell(line, field)) for field, _ in COLUMNS])
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def about(report: Mapping[str, Any]) -> list[tuple[str, Any]]:
    """What the report is, as (label, value) rows: the XLSX's second sheet."""
    versions = ", ".join(f"{WORDS[m]} {v}" for m, v in report["definition_versions"].items())
    return [
        ("Region", report["region"]),
        ("Månad", report["month"]),
        ("Version", report["version"]),
        ("Gjord", report["made_at"]),
        ("Som känt per", report["as_known_at"]),
        ("Variant", "offentlig (celler under 20 dolda)" if report["variant"] == "public" else "intern (alla celler)"),
        ("Definitionsversioner", versions),
    ]


def to_xlsx(report: Mapping[str, Any]) -> bytes:
    book = Workbook()
    sheet = book.active
    sheet.title = "Rapport"
    sheet.append([heading for _, heading in COLUMNS])
    share_column = [field for field, _ in COLUMNS].index("share") + 1
    for line in report["lines"]:
        sheet.append([_cell(line, field) for field, _ in COLUMNS])
        cell = sheet.cell(row=sheet.max_row, column=share_column)
        if isinstance(cell.value, float):
            cell.number_format = "0.0%"
    sheet.freeze_panes = "A2"
    info = book.create_sheet("Om rapporten")
    for row in about(report):
        info.append(list(row))
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def to_json(report: Mapping[str, Any]) -> bytes:
    return orjson.dumps(report)


WRITERS = {"json": to_json, "csv": to_csv, "xlsx": to_xlsx}
