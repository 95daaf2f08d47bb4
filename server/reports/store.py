"""The versions of a region's monthly report: keep a new one only when the content changed, list them,
and compare two cell by cell."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import orjson
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, sessionmaker

from ..storage.report_tables import MonthlyReportVersion
from .build import content_digest
from .shape import FIELDS, cell_key


@dataclass(frozen=True)
class Kept:
    row: MonthlyReportVersion
    new: bool  # False: the latest version already had this content


def latest(session: Session, region: str, month: date) -> MonthlyReportVersion | None:
    return session.scalars(
        select(MonthlyReportVersion)
        .where(MonthlyReportVersion.region == region, MonthlyReportVersion.month == month)
        .order_by(MonthlyReportVersion.version.desc())
        .limit(1)
    ).first()


def version(session: Session, region: str, month: date, number: int) -> MonthlyReportVersion | None:
    return session.scalars(
        select(MonthlyReportVersion).where(MonthlyReportVersion.region == region, MonthlyReportVersion.month == month, MonthlyReportVersion.version == number)
    ).first()


def versions(session: Session, region: str, month: date) -> list[MonthlyReportVersion]:
    return list(
        session.scalars(
            select(MonthlyReportVersion)
            .where(MonthlyReportVersion.region == region, MonthlyReportVersion.month == month)
            .order_by(MonthlyReportVersion.version)
        )
    )


def keep(sessions: sessionmaker[Session], report: dict[str, Any], month: date, now: datetime) -> Kept:
    """Keep `report` as the next version unless the latest one has the same content (then only note
    that it was checked). Two processes keeping the same month at once: one insert wins, the other
    reads what it kept."""
    digest = content_digest(report)
    body = {key: value for key, value in report.items() if key != "inputs"}
    for _ in range(3):
        try:
            with sessions.begin() as session:
                current = latest(session, report["region"], month)
                if current is not None and current.digest == digest:
                    current.checked_at, current.inputs = now, report["inputs"]
                    return Kept(_detached(session, current), False)
                number = 1 if current is None else current.version + 1
                row = MonthlyReportVersion(
                    region=report["region"],
                    month=month,
                    version=number,
                    made_at=now,
                    checked_at=now,
                    digest=digest,
                    inputs=report["inputs"],
                    body=orjson.dumps(body),
                )
                session.add(row)
                session.flush()
                return Kept(_detached(session, row), True)
        except IntegrityError:
            continue  # another process kept a version meanwhile: compare with that one
    raise RuntimeError(f"could not keep the report of {report['region']} for {month}: versions kept concurrently")


def _detached(session: Session, row: MonthlyReportVersion) -> MonthlyReportVersion:
    session.flush()
    session.refresh(row)
    session.expunge(row)
    return row


def months_kept(session: Session, region: str) -> list[tuple[date, int]]:
    """(month, latest version) of every month kept for the region, newest first."""
    rows = session.execute(
        select(MonthlyReportVersion.month, func.max(MonthlyReportVersion.version))
        .where(MonthlyReportVersion.region == region)
        .group_by(MonthlyReportVersion.month)
        .order_by(MonthlyReportVersion.month.desc())
    )
    return [(month, number) for month, number in rows]


def report_of(row: MonthlyReportVersion) -> dict[str, Any]:
    """The internal report a version holds, with its version and when it was made."""
    return {**orjson.loads(row.body), "version": row.version, "made_at": row.made_at.isoformat()}


def diff(old: dict[str, Any], new: dict[str, Any]) -> list[dict[str, Any]]:
    """Every cell whose value differs between two reports' lines (a line only one has: all its cells)."""
    before = {cell_key(line): line for line in old["lines"]}
    after = {cell_key(line): line for line in new["lines"]}
    changes = []
    for key in sorted(before.keys() | after.keys()):
        a, b = before.get(key, {}), after.get(key, {})
        for field in FIELDS:
            if a.get(field) != b.get(field):
                unit, section, group, form = key
                changes.append({"unit": unit, "section": section, "group": group, "form": form, "field": field, "before": a.get(field), "after": b.get(field)})
    return changes
