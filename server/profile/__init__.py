"""The clinic profile: one page per unit for the yearly dialogue meeting (12 months of every metric
against the unit's target and the region, and listed patients per doctor against the guideline).
The PDF is drawn in `server/web/profile_pdf.py`."""

from .build import ClinicProfile, DoctorLine, MetricYear, MonthFigures, MonthNotEnded, clinic_profile, last_ended_month, profile_months

__all__ = [
    "ClinicProfile",
    "DoctorLine",
    "MetricYear",
    "MonthFigures",
    "MonthNotEnded",
    "clinic_profile",
    "last_ended_month",
    "profile_months",
]
