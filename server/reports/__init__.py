"""The monthly national report: per unit and month, the counts the national reporting asks for
(`shape`), a public variant without small cells (`suppression`), CSV, XLSX and JSON (`formats`), made
from the stored data with the metric rules' own code (`build`) and kept in versions (`store`).
The job that makes it after each month ends is `server/jobs/national_report.py`."""

from .build import make_report, month_period
from .formats import MEDIA_TYPES, WRITERS
from .service import NotEnded, report_for, variant_of
from .store import diff, report_of, versions

__all__ = ["MEDIA_TYPES", "WRITERS", "NotEnded", "diff", "make_report", "month_period", "report_for", "report_of", "variant_of", "versions"]
