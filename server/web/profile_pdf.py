"""The clinic profile (server/profile/) as one A4 page (landscape) in Swedish, drawn with reportlab; here
beside the pages because it is read by the same people, in the same Swedish formats (`formatting`).

reportlab's built-in Helvetica is encoded as WinAnsi, which holds å, ä, ö, the en dash and the
non-breaking space the Swedish formats use, so no font file is embedded or needed on the server.
Text is drawn as text (not outlines), so `pdftotext` and screen readers get it back.
"""

from __future__ import annotations

from io import BytesIO
from typing import Any

from reportlab.lib import colors
from reportlab.lib.pagesizes import A4, landscape
from reportlab.pdfgen.canvas import Canvas

from ..profile import ClinicProfile, MetricYear
from .formatting import MONTHS, day, moment, number, percent

PAGE_WIDTH, PAGE_HEIGHT = landscape(A4)
MARGIN = 36.0
LABEL_WIDTH = 104.0
ROW = 10.5
DOCTOR_COLUMNS = 3
PSEUDONYM_SHOWN = 20  # characters; a longer pseudonym is cut and ends in "…"
NO_FIGURE = "–"
SMALL_MARK = "*"
UNDER = colors.HexColor("#a4161a")  # a share under the target (the text says it too: the target is on the next row)
MET = colors.HexColor("#1b6e20")


def month_label(start: Any) -> str:
    return f"{MONTHS[start.month - 1]} {start.year}"


def _share(figure: dict[str, Any]) -> str:
    if not figure["denominator"]:
        return NO_FIGURE
    small = figure.get("small_n", figure.get("details", {}).get("small_n"))
    return percent(figure["share"]) + (SMALL_MARK if small else "")


def _count(figure: dict[str, Any]) -> str:
    return f"{number(figure['numerator'])} av {number(figure['denominator'])}" if figure["denominator"] else NO_FIGURE


def _target(figure: dict[str, Any]) -> str:
    return percent(figure["target"], 0) if figure["target"] is not None else "inget mål"


def _pseudonym(value: str) -> str:
    return value if len(value) <= PSEUDONYM_SHOWN else value[: PSEUDONYM_SHOWN - 1] + "…"


class _Page:
    def __init__(self, canvas: Canvas) -> None:
        self.canvas = canvas
        self.y = PAGE_HEIGHT - MARGIN

    def text(self, x: float, value: str, size: float = 7.5, bold: bool = False, color: Any = colors.black, right: bool = False) -> None:
        self.canvas.setFont("Helvetica-Bold" if bold else "Helvetica", size)
        self.canvas.setFillColor(color)
        if right:
            self.canvas.drawRightString(x, self.y, value)
        else:
            self.canvas.drawString(x, self.y, value)

    def down(self, by: float = ROW) -> None:
        self.y -= by


def _columns(profile: ClinicProfile) -> list[float]:
    width = (PAGE_WIDTH - 2 * MARGIN - LABEL_WIDTH) / len(profile.months)
    return [MARGIN + LABEL_WIDTH + width * (i + 1) - 3 for i in range(len(profile.months))]  # right edges


def _metric(page: _Page, year: MetricYear, columns: list[float]) -> None:
    page.text(MARGIN, f"{year.name} (definition version {year.definition_version})", 8.5, bold=True)
    page.down(ROW + 1)
    rows = [
        ("Enheten", _share, "unit"),
        ("Antal", _count, "unit"),
        ("Enhetens mål", _target, "unit"),
        ("Regionen", _share, "region"),
        ("Regionen, antal", _count, "region"),
    ]
    for label, shown, whose in rows:
        page.text(MARGIN + 6, label)
        for right, month in zip(columns, year.months):
            figure = getattr(month, whose)
            color = colors.black
            if label == "Enheten" and figure["meets_target"] is not None:
                color = MET if figure["meets_target"] else UNDER
            page.text(right, shown(figure), bold=label == "Enheten", color=color, right=True)
        page.down()
    page.canvas.setStrokeColor(colors.lightgrey)
    page.canvas.line(MARGIN, page.y + ROW - 3, PAGE_WIDTH - MARGIN, page.y + ROW - 3)
    page.down(4)


def _doctors(page: _Page, profile: ClinicProfile) -> None:
    guideline = number(profile.guideline)
    above = [d for d in profile.doctors if d.above_guideline]
    if profile.listing_at is None:
        heading = f"Listade patienter per läkare: ingen listning finns till och med {month_label(profile.month)}"
    else:
        heading = f"Listade patienter per läkare (listningen {day(profile.listing_at.date())}), riktmärke högst {guideline} per läkare"
    page.text(MARGIN, heading, 8.5, bold=True)
    page.down(ROW + 1)
    if profile.listing_at is not None and not profile.doctors:
        page.text(MARGIN + 6, "Listningen har ingen uppgift per läkare.")
        page.down()
        return
    if profile.doctors:
        page.text(MARGIN + 6, f"{len(above)} av {len(profile.doctors)} läkare har fler än {guideline} listade patienter (markerade).")
        page.down(ROW + 2)
    width = (PAGE_WIDTH - 2 * MARGIN) / DOCTOR_COLUMNS
    rows_fit = max(1, int((page.y - MARGIN - 2 * ROW) // ROW) + 1)
    shown = profile.doctors[: rows_fit * DOCTOR_COLUMNS]
    per_column = -(-len(shown) // DOCTOR_COLUMNS) if shown else 0
    top = page.y
    for index, doctor in enumerate(shown):
        column, row = divmod(index, per_column)
        page.y = top - row * ROW
        x = MARGIN + 6 + column * width
        color = UNDER if doctor.above_guideline else colors.black
        page.text(x, doctor.label, bold=doctor.above_guideline, color=color)
        page.text(x + 42, _pseudonym(doctor.pseudonym), 6.5, color=colors.dimgrey)
        page.text(x + width - 70, number(doctor.listed), bold=doctor.above_guideline, color=color, right=True)
        if doctor.above_guideline:
            page.text(x + width - 66, "över riktmärket", 6.5, color=UNDER)
    page.y = top - per_column * ROW
    if len(shown) < len(profile.doctors):
        page.text(MARGIN + 6, f"och {len(profile.doctors) - len(shown)} läkare till, alla med kortare listor.")
        page.down()


def profile_pdf(profile: ClinicProfile) -> bytes:
    """The profile as a one-page PDF."""
    out = BytesIO()
    canvas = Canvas(out, pagesize=(PAGE_WIDTH, PAGE_HEIGHT), invariant=True)
    last = month_label(profile.month)
    canvas.setTitle(f"Klinikprofil {profile.name} {last}")
    canvas.setSubject("Underlag för dialogmötet: 12 månader av enhetens mått mot mål och region")
    canvas.setAuthor("vardkoll")
    page = _Page(canvas)
    page.text(MARGIN, f"Klinikprofil: {profile.name}", 15, bold=True)
    page.down(15)
    first = profile.months[0].start
    page.text(
        MARGIN,
        f"{profile.unit} · {profile.region} · {month_label(first)} – {last} (12 månader till och med {last}) · underlag för dialogmötet · gjord {moment(profile.made_at)}",
        8,
    )
    page.down(11)
    page.text(
        MARGIN,
        f"Varje månad räknad som API:t räknar den, som den var känd vid månadens slut. Regionen = alla enheter i {profile.region} summerade (täljare och nämnare). "
        f"{NO_FIGURE} = ingen data, {SMALL_MARK} = litet underlag (färre än 20).",
        7,
        color=colors.dimgrey,
    )
    page.down(16)
    columns = _columns(profile)
    for right, period in zip(columns, profile.months):
        page.text(right, month_label(period.start), bold=True, right=True)
    page.down(ROW + 2)
    for year in profile.metrics:
        _metric(page, year, columns)
    page.down(6)
    _doctors(page, profile)
    canvas.setFont("Helvetica", 6.5)
    canvas.setFillColor(colors.dimgrey)
    canvas.drawString(
        MARGIN,
        MARGIN - 14,
        "vardkoll · definitionerna på svenska: Hjälp › Klinikvy · siffrorna är desamma som API:t och Klinikvy ger för samma enhet och månad",
    )
    canvas.showPage()
    canvas.save()
    return out.getvalue()
