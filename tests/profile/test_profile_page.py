"""The profile's page and its rules, without a server: the doctors' guideline, and one page whatever the
number of doctors."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from vardkoll.protocol import DoctorListing, ListingSnapshot
from vardkoll.server.metrics import Period
from vardkoll.server.metrics.fixed_doctor import LIST_SIZE_GUIDELINE, above_guideline, active_doctor_lists
from vardkoll.server.profile import ClinicProfile, DoctorLine, MetricYear, MonthFigures, profile_months
from vardkoll.server.web.profile_pdf import profile_pdf

needs_poppler = pytest.mark.skipif(not shutil.which("pdftotext") and not os.environ.get("CI"), reason="poppler-utils is not installed")


def test_a_doctor_at_the_guideline_is_within_it_and_one_more_is_above():
    assert LIST_SIZE_GUIDELINE == 1100
    assert not above_guideline(DoctorListing(doctor="doc-at-1100", listed=1100))
    assert above_guideline(DoctorListing(doctor="doc-at-1101", listed=1101))


def test_the_doctors_are_the_active_ones_longest_list_first():
    snapshot = ListingSnapshot(
        v=1,
        id="snap-1",
        unit="SE2321000016-VN01",
        at=datetime(2026, 3, 15, 5, tzinfo=timezone.utc),
        listed=2000,
        named_doctor=1900,
        doctors=(
            DoctorListing(doctor="doc-short", listed=300),
            DoctorListing(doctor="doc-gone", listed=2000, active=False),
            DoctorListing(doctor="doc-long", listed=1200),
            DoctorListing(doctor="doc-also-300", listed=300),
        ),
    )
    assert [d.doctor for d in active_doctor_lists(snapshot)] == ["doc-long", "doc-also-300", "doc-short"]
    assert active_doctor_lists(None) == []


def test_the_twelve_months_end_with_the_month_asked_for():
    months = profile_months(date(2026, 2, 1))
    assert months[0] == Period(date(2025, 3, 1), date(2025, 3, 31))
    assert months[-1] == Period(date(2026, 2, 1), date(2026, 2, 28))
    assert len(months) == 12


def _empty_figure() -> dict:
    return {"numerator": 0, "denominator": 0, "share": None, "target": 0.9, "meets_target": None, "details": {"small_n": True}, "small_n": True}


def _profile(doctors: int) -> ClinicProfile:
    months = profile_months(date(2026, 3, 1))
    metrics = [MetricYear(m, f"Mått {m}", 1, [MonthFigures(p, _empty_figure(), _empty_figure()) for p in months]) for m in ("a", "b", "c", "d")]
    lines = [DoctorLine(f"Läkare {n}", f"doc-{n:04d}-abcdefghijklmnopqrstuvwxyz", 1500 - n * 10, 1500 - n * 10 > 1100) for n in range(1, doctors + 1)]
    return ClinicProfile(
        unit="SE2321000016-VN01",
        name="Hälsocentralen Björkå",
        region="Region Västernorrland",
        month=date(2026, 3, 1),
        months=months,
        metrics=metrics,
        doctors=lines,
        listing_at=datetime(2026, 3, 15, 6, tzinfo=timezone.utc),
        guideline=1100,
        made_at=datetime(2026, 4, 2, 8, tzinfo=timezone.utc),
    )


@needs_poppler
def test_many_doctors_still_make_one_page_and_the_rest_are_counted(tmp_path: Path):
    path = tmp_path / "profil.pdf"
    path.write_bytes(profile_pdf(_profile(150)))
    info = subprocess.run(["pdfinfo", str(path)], check=True, capture_output=True, text=True).stdout
    assert re.search(r"^Pages:\s+1$", info, re.MULTILINE), info
    text = subprocess.run(["pdftotext", "-layout", str(path), "-"], check=True, capture_output=True, text=True).stdout
    shown = sum(1 for n in range(1, 151) if f"Läkare {n} " in text)
    assert 30 <= shown < 150
    assert f"och {150 - shown} läkare till, alla med kortare listor." in text
    # Läkare n has 1 500 − 10n: 1 490 down to 1 110 (n = 1…39) are above 1 100; Läkare 40 has exactly 1 100.
    assert "39 av 150 läkare har fler än 1 100 listade patienter" in text
