"""The clinic profile PDF, read back the way a person would: rendered to an image with pdftoppm and its
text read with pdftotext (Debian's poppler-utils). The expected figures are worked by hand in world.py."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from vardkoll.server.auth import Role

from .world import MONTH, REGION, VN01, VN01_NAME, VN02

POPPLER = shutil.which("pdftotext") and shutil.which("pdftoppm")
needs_poppler = pytest.mark.skipif(not POPPLER and not os.environ.get("CI"), reason="poppler-utils (pdftotext, pdftoppm) is not installed")
PROFILE = f"/api/v1/units/{VN01}/profile.pdf"


def pdf_text(pdf: bytes, tmp_path: Path) -> str:
    path = tmp_path / "profil.pdf"
    path.write_bytes(pdf)
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout
    return text.replace("\u00a0", " ")


def lines_of(text: str) -> dict[str, list[str]]:
    """Each table row's cells by its label, per metric block: {"Telefon…/Enheten": [12 cells]}."""
    rows: dict[str, list[str]] = {}
    block = ""
    for line in text.splitlines():
        if "(definition version" in line:
            block = line.strip().rsplit(" (definition", 1)[0]
            continue
        match = re.match(r"^\s+(Enheten|Antal|Enhetens mål|Regionen|Regionen, antal)\s{2,}(.*)$", line)
        if match and block:
            cells = re.split(r"\s{2,}|(?<=–)\s+(?=\S)", match.group(2).strip())
            rows[f"{block}/{match.group(1)}"] = cells
    return rows


@needs_poppler
def test_the_profile_reads_back_with_the_hand_worked_figures(year_api, tmp_path):
    response = year_api.get(PROFILE, params={"month": MONTH})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/pdf"
    assert f"vardkoll-klinikprofil-{VN01}-2026-03.pdf" in response.headers["content-disposition"]
    text = pdf_text(response.content, tmp_path)

    assert f"Klinikprofil: {VN01_NAME}" in text  # å, ä, ö
    assert "Hälsocentralen Björkå" in text and REGION in text
    assert "apr 2025 – mar 2026 (12 månader till och med mar 2026)" in text

    rows = lines_of(text)
    none = ["–"] * 10
    assert rows["Telefontillgänglighet (kontakt samma dag)/Enheten"] == [*none, "90,0 %*", "80,0 %"]
    assert rows["Telefontillgänglighet (kontakt samma dag)/Antal"] == [*none, "9 av 10", "20 av 25"]
    assert rows["Telefontillgänglighet (kontakt samma dag)/Enhetens mål"] == ["90 %"] * 9 + ["85 %"] * 3
    assert rows["Telefontillgänglighet (kontakt samma dag)/Regionen"] == [*none, "90,0 %*", "87,5 %"]
    assert rows["Telefontillgänglighet (kontakt samma dag)/Regionen, antal"] == [*none, "9 av 10", "35 av 40"]
    assert rows["Medicinsk bedömning inom 3 dagar/Enheten"] == [*none, "–", "75,0 %*"]
    assert rows["Medicinsk bedömning inom 3 dagar/Antal"][-1] == "3 av 4"
    assert rows["Medicinsk bedömning inom 3 dagar/Regionen, antal"][-1] == "4 av 5"
    assert rows["Medicinsk bedömning inom 3 dagar/Regionen"][-1] == "80,0 %*"
    assert rows["Fast läkarkontakt/Enheten"] == [*none, "–", "80,0 %"]
    assert rows["Fast läkarkontakt/Antal"][-1] == "2 400 av 3 000"
    assert rows["Fast läkarkontakt/Enhetens mål"] == ["55 %"] * 12
    assert rows["Fast läkarkontakt/Regionen"][-1] == "82,5 %"
    assert rows["Fast läkarkontakt/Regionen, antal"][-1] == "3 300 av 4 000"
    assert rows["Kontinuitet hos fast läkare/Enheten"][-1] == "75,0 %*"
    assert rows["Kontinuitet hos fast läkare/Antal"][-1] == "3 av 4"
    assert rows["Kontinuitet hos fast läkare/Enhetens mål"] == ["inget mål"] * 12
    assert rows["Kontinuitet hos fast läkare/Regionen"][-1] == "75,0 %*"

    assert "Listade patienter per läkare (listningen 15 mar 2026), riktmärke högst 1 100 per läkare" in text
    assert "1 av 3 läkare har fler än 1 100 listade patienter" in text
    doctors = re.findall(r"(Läkare \d)\s+(doc-vn01-\w)\s+([\d ]+?)(?:\s+(över riktmärket))?(?=\s{2,}|\n|$)", text)
    assert [(label, pseudonym, listed.strip(), flag) for label, pseudonym, listed, flag in doctors] == [
        ("Läkare 1", "doc-vn01-a", "1 250", "över riktmärket"),
        ("Läkare 2", "doc-vn01-b", "1 100", ""),  # at the guideline is not above it
        ("Läkare 3", "doc-vn01-c", "50", ""),
    ]
    assert "doc-vn01-d" not in text  # not active


@needs_poppler
def test_the_profile_is_one_page_that_renders(year_api, tmp_path):
    pdf = year_api.get(PROFILE, params={"month": MONTH}).content
    assert pdf.startswith(b"%PDF")
    (tmp_path / "profil.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "50", "-png", str(tmp_path / "profil.pdf"), str(tmp_path / "sida")], check=True)
    pages = sorted(tmp_path.glob("sida*.png"))
    assert len(pages) == 1
    with Image.open(pages[0]) as image:
        width, height = image.size
        assert width > height  # A4 landscape
        grey = image.convert("L")
        dark = sum(count for value, count in enumerate(grey.histogram()) if value < 128)
    assert dark > 0.005 * width * height  # text and lines, not a blank page


def test_the_profile_has_the_roles_of_the_units_figures(year_api):
    manager_here = year_api.token(Role.clinic_manager, unit=VN01)
    manager_there = year_api.token(Role.clinic_manager, unit=VN02)
    analyst_here = year_api.token(Role.region_analyst, region=REGION)
    analyst_there = year_api.token(Role.region_analyst, region="Region Gävleborg")
    installer = year_api.token(Role.installer, region=REGION)
    assert year_api.get(PROFILE, manager_here, params={"month": MONTH}).status_code == 200
    assert year_api.get(PROFILE, analyst_here, params={"month": MONTH}).status_code == 200
    assert year_api.get(PROFILE, manager_there, params={"month": MONTH}).status_code == 403
    assert year_api.get(PROFILE, analyst_there, params={"month": MONTH}).status_code == 403
    assert year_api.get(PROFILE, installer, params={"month": MONTH}).status_code == 403
    assert year_api.get(PROFILE, None, params={"month": MONTH}).status_code == 401


def test_every_download_of_a_profile_is_in_the_access_log(year_api):
    manager = year_api.token(Role.clinic_manager, unit=VN01)
    assert year_api.get(PROFILE, manager, params={"month": MONTH}).status_code == 200
    records = year_api.get("/api/v1/access-log", params={"unit": VN01}).json()
    assert any(r["action"] == "read:profile" and r["role"] == "clinic_manager" and r["detail"] == "profile 2026-03" for r in records), records


def test_a_month_not_ended_and_a_malformed_one_are_refused(year_api):
    assert year_api.get(PROFILE, params={"month": "2999-01"}).status_code == 409
    assert year_api.get(PROFILE, params={"month": "2026-13"}).status_code == 422
    assert year_api.get("/api/v1/units/SE2321000016-XX99/profile.pdf", params={"month": MONTH}).status_code == 404
