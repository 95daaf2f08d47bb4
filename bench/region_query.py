"""Region query benchmark (SPEC 6): all units of a region, one month, one year of data stored: p95 < 50 ms.

    .venv/bin/python bench/region_query.py                       # SQLite (builds the data once, ~1 hour)
    .venv/bin/python bench/region_query.py --postgres            # and a throwaway PostgreSQL cluster
    .venv/bin/python bench/region_query.py --database-url URL    # and that PostgreSQL database

The data: a year of realistic events (vardkoll.simulation.generate) for 200 units registered in 10
regions of 20, written through the server's own ingest (`IngestService.ingest`, batches of 20 000,
exactly what MQTT or HTTP ingest stores: the events archive, calls, cases, listing snapshots, doctor
visits, unit activity). It is built once into a SQLite file under bench/data/ (ignored by git) and
reused; for PostgreSQL the stored tables are copied from that file (the rows are the same on both
backends: every merge keeps the earliest stamp, whatever the order), then ANALYZEd.

Measured, per metric, over `--regions` regions and every complete month of the year:

  cold      FigureService.figures(units_of_region(R), metric, month) on an empty figure cache and an
            empty figure store: the figures are computed from the stored rows (the database pages are
            warm: the OS caches them); this fills the store, as the rollup job does for past months
  stored    the same queries in a new FigureService (another server process, or one after a restart:
            an empty in-memory cache), answered from the stored figures (server/figures/store.py);
            what a region query costs once the rollup job has run (`--repeat` rounds)
  warm      the same queries again in the first service, answered from its in-memory figure cache
  baseline  bare SQL over the same rows, in the same run: per unit, SELECT count(*) with the WHERE clause
            the loader uses for that metric (server/figures/loading.py)
  fetch     the same rows fetched with SQLAlchemy Core (no ORM, no ledger): what any row-based figure pays

and prints p50/p95/max in milliseconds, each against the baseline's p95.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import statistics
import sys
import time
from collections import deque
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Callable

import orjson
from sqlalchemy import and_, delete, func, or_, select, text
from sqlalchemy.orm import Session

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent

from bench_common import machine, summary, throwaway_postgres  # noqa: E402
from vardkoll.simulation import GENERATOR_VERSION  # noqa: E402
from vardkoll.server.figures import FigureService  # noqa: E402
from vardkoll.server.figures.cache import FigureCache  # noqa: E402
from vardkoll.server.metrics import METRICS, Period, end_of_day  # noqa: E402
from vardkoll.server.metrics.calendar import zone  # noqa: E402
from vardkoll.server.metrics.continuity import coc_window  # noqa: E402
from vardkoll.server.storage.stamp_keys import stamp_key  # noqa: E402
from vardkoll.server.storage.tables import CallRow, CaseRow, DoctorVisitRow, SnapshotRow  # noqa: E402

GOAL_P95_MS = 50.0
BATCH_EVENTS = 20_000
BUILD_VERSION = 2  # bump when the way the data is built changes
STATE_TABLES = ("units", "unit_activity", "calls", "cases", "listing_snapshots", "doctor_visits", "events")
_LAST = "|\U0010ffff"


# -- the data ------------------------------------------------------------------------------------------


def region_of(index: int, per_region: int) -> str:
    return f"Region {index // per_region + 1:02d}"


def data_path(data_dir: Path, units: int, regions: int, days: int, start: date, seed: int) -> Path:
    return data_dir / f"region-u{units}-r{regions}-d{days}-{start.isoformat()}-s{seed}-g{GENERATOR_VERSION}-b{BUILD_VERSION}.db"


REPEAT_WINDOW = 100_000  # the generator repeats a line at most 500 lines later


def _produce(queue: Any, seed: int, units: int, days: int, start: date) -> None:
    """In a child process: generate the events and hand them over as blocks of JSON lines.

    The generator's repeated lines (an archive's redeliveries, 0.5 %) are left out: a repeat changes
    nothing that is stored, and on SQLite ingest's check of repeats across batches scans the whole
    events table (see docs/benchmarks.md), which would make the build quadratic. Their number is
    put last on the queue."""
    from vardkoll.simulation import generate

    block: list[bytes] = []
    recent: set[str] = set()
    order: deque[str] = deque()
    repeats = 0
    for event in generate(seed=seed, units=units, days=days, start_date=start):
        if event["id"] in recent:
            repeats += 1
            continue
        recent.add(event["id"])
        order.append(event["id"])
        if len(order) > REPEAT_WINDOW:
            recent.discard(order.popleft())
        event = {**event, "unit": unit_name(event["unit"], _unit_index(event["id"]))}
        block.append(orjson.dumps(event))
        if len(block) == BATCH_EVENTS:
            queue.put(b"\n".join(block))
            block = []
    if block:
        queue.put(b"\n".join(block))
    queue.put(None)
    queue.put(repeats)


def build_sqlite(path: Path, units: int, regions: int, days: int, start: date, seed: int) -> dict[str, Any]:
    """Generate the year and write it through `IngestService.ingest`, into `path` (atomically)."""
    from vardkoll.protocol import parse_event_line
    from vardkoll.server.ingest.service import Source
    from vardkoll.server.services import build_services
    from vardkoll.server.settings import ServerSettings
    from vardkoll.server.storage.registry_tables import UnitRow

    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm")):
        leftover.unlink(missing_ok=True)
    per_region = units // regions
    names = _unit_names(seed, units, start)
    assert len(set(names)) == units
    context = multiprocessing.get_context("fork")
    queue = context.Queue(maxsize=4)
    producer = context.Process(target=_produce, args=(queue, seed, units, days, start), daemon=True)
    producer.start()
    services = build_services(ServerSettings(database_url=f"sqlite:///{partial}"), apply_migrations=True)
    with services.sessions.begin() as session:
        for index, unit in enumerate(names):
            session.add(UnitRow(unit=unit, name=f"Vårdcentral {index + 1}", region=region_of(index, per_region)))
    services.units.invalidate()
    source = Source("http")
    started = time.perf_counter()
    lines = new = duplicates = 0
    changed: set[str] = set()
    next_report = 1_000_000
    while (block := queue.get()) is not None:
        items = [parse_event_line(line) for line in block.split(b"\n")]
        report = services.ingest.ingest(items, source)
        if report.rejected:
            raise RuntimeError(f"ingest refused generated events: {report.rejected[:3]}")
        changed |= report.units_changed
        lines += len(items)
        new += report.new
        duplicates += report.duplicates
        if lines >= next_report:
            rate = lines / (time.perf_counter() - started)
            print(f"  stored {lines:,} events ({rate:,.0f}/s)", file=sys.stderr, flush=True)
            next_report += 1_000_000
    repeats = queue.get()
    producer.join()
    if changed != set(names):
        raise RuntimeError(f"events for unregistered units or units without events: {sorted(changed ^ set(names))[:5]}")
    elapsed = time.perf_counter() - started
    with services.engine.connect() as connection:
        rows = {table: connection.execute(text(f'SELECT count(*) FROM "{table}"')).scalar() for table in STATE_TABLES}
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    services.engine.dispose()
    meta = {
        "build_version": BUILD_VERSION,
        "generator_version": GENERATOR_VERSION,
        "seed": seed,
        "units": units,
        "regions": regions,
        "days": days,
        "start": start.isoformat(),
        "lines": lines,
        "stored_events": new,
        "duplicates": duplicates,
        "repeated_lines_left_out": repeats,
        "rows": rows,
        "build_seconds": round(elapsed, 1),
        "built_through": "IngestService.ingest, batches of 20 000, SQLite (repeated lines left out)",
    }
    partial.replace(path)
    Path(f"{partial}-wal").unlink(missing_ok=True)
    Path(f"{partial}-shm").unlink(missing_ok=True)
    path.with_name(path.name + ".meta.json").write_bytes(orjson.dumps(meta, option=orjson.OPT_INDENT_2))
    return meta


def unit_name(generated: str, index: int) -> str:
    """A unique HSA-id per generated unit. The generator names units past the 99th in base 36 and so
    repeats some HSA-ids among 200 units (unit 179 is SE2321000065-VC50, as is unit 49): here every
    unit keeps its organisation number and gets a three-digit suffix from its index instead."""
    return f"{generated.split('-', 1)[0]}-VC{index + 1:03d}"


def _unit_index(event_id: str) -> int:
    """The generator's ids are e-<unit index>-<counter>."""
    return int(event_id.split("-", 2)[1])


def _unit_names(seed: int, units: int, start: date) -> list[str]:
    """The HSA-ids of the generated units in the generator's order (unit index 0, 1, ...)."""
    from vardkoll.simulation import generate

    names: dict[int, str] = {}
    for event in generate(seed=seed, units=units, days=1, start_date=start):
        index = _unit_index(event["id"])
        names.setdefault(index, unit_name(event["unit"], index))
    if sorted(names) != list(range(units)):
        raise RuntimeError("the generator's first day does not name every unit")
    return [names[index] for index in range(units)]


def ensure_sqlite(args: argparse.Namespace) -> tuple[Path, dict[str, Any]]:
    path = data_path(args.data_dir, args.units, args.region_count, args.days, args.start, args.seed)
    meta_path = path.with_name(path.name + ".meta.json")
    if path.is_file() and meta_path.is_file() and not args.rebuild:
        return path, orjson.loads(meta_path.read_bytes())
    print(f"building {path.name}: {args.units} units, {args.days} days (once; reused afterwards)", file=sys.stderr, flush=True)
    return path, build_sqlite(path, args.units, args.region_count, args.days, args.start, args.seed)


def ensure_postgres(url: str, sqlite_path: Path, meta: dict[str, Any], rebuild: bool) -> None:
    """Copy the stored tables from the SQLite file into the PostgreSQL database at `url` (once)."""
    from vardkoll.server.storage import make_engine, migrate
    from vardkoll.server.storage.tables import SQLModel

    engine = make_engine(url)
    marker = orjson.dumps({key: meta[key] for key in ("build_version", "generator_version", "seed", "units", "regions", "days", "start")}).decode()
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS bench_region_data (marker TEXT NOT NULL)")
        present = connection.exec_driver_sql("SELECT marker FROM bench_region_data").scalar()
    if present == marker and not rebuild:
        engine.dispose()
        return
    print("copying the stored tables into PostgreSQL (once for this database)", file=sys.stderr, flush=True)
    migrate(engine)
    source = make_engine(f"sqlite:///{sqlite_path}")
    tables = SQLModel.metadata.tables
    started = time.perf_counter()
    with engine.begin() as connection:
        connection.exec_driver_sql("DELETE FROM bench_region_data")
        for name in STATE_TABLES:
            connection.exec_driver_sql(f'TRUNCATE "{name}"')
    for name in STATE_TABLES:
        table = tables[name]
        columns = [c.name for c in table.columns if not (name == "events" and c.name == "seq")]
        copied = 0
        with source.connect() as reader, engine.begin() as writer:
            cursor = writer.connection.driver_connection.cursor()  # type: ignore[union-attr]  # the DBAPI connection is open inside this block
            quoted = ", ".join(f'"{c}"' for c in columns)
            query = select(*[table.c[c] for c in columns])
            if name == "events":
                query = query.order_by(table.c.seq)  # the archive keeps its order of arrival
            result = reader.execution_options(yield_per=50_000).execute(query)
            with cursor.copy(f'COPY "{name}" ({quoted}) FROM STDIN') as copy:
                for row in result:
                    copy.write_row(tuple(row))
                    copied += 1
        print(f"  {name}: {copied:,} rows ({time.perf_counter() - started:.0f} s)", file=sys.stderr, flush=True)
    with engine.begin() as connection:
        connection.exec_driver_sql("INSERT INTO bench_region_data (marker) VALUES (%s)", (marker,))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
    source.dispose()
    engine.dispose()


# -- the baseline: bare SQL over the rows each loader reads --------------------------------------------


def _loader_where(metric: str, unit: str, period: Period) -> tuple[Any, Any]:
    """(table, WHERE) exactly as server/figures/loading.py reads one unit for a query with as_of=None."""
    tz = zone("Europe/Stockholm")
    if metric == "telephone":
        return CallRow.__table__, and_(
            CallRow.unit == unit,
            or_(CallRow.offered_day.between(period.start, period.end), CallRow.rejected_day.between(period.start, period.end)),
        )
    if metric == "assessment":
        as_of_key = stamp_key(end_of_day(period.end, tz), _LAST)
        return CaseRow.__table__, and_(
            CaseRow.unit == unit,
            or_(
                CaseRow.assessed_day.between(period.start, period.end),
                CaseRow.contact_day.between(period.start, period.end),
                and_(CaseRow.contact <= as_of_key, or_(CaseRow.assessed.is_(None), CaseRow.assessed > as_of_key)),
            ),
        )
    if metric == "fixed_doctor":
        return SnapshotRow.__table__, and_(SnapshotRow.unit == unit, SnapshotRow.stamp <= stamp_key(end_of_day(period.end, tz), _LAST))
    window = coc_window(period.end)
    return DoctorVisitRow.__table__, and_(DoctorVisitRow.unit == unit, DoctorVisitRow.day.between(min(window.start, period.start), period.end))


def baseline_count(session: Session, metric: str, units: list[str], period: Period) -> int:
    """Per unit, as the loader asks: SELECT count(*) with the loader's WHERE (the latest snapshot for
    fixed_doctor). One GROUP BY over the whole region would be the obvious form, but SQLite then
    plans a scan of each unit's whole year (4 s instead of 0.4 s for telephone), which is no floor."""
    rows = 0
    for unit in units:
        table, where = _loader_where(metric, unit, period)
        if metric == "fixed_doctor":
            rows += session.execute(select(func.max(table.c.stamp)).where(where)).scalar() is not None
        else:
            rows += session.execute(select(func.count()).select_from(table).where(where)).scalar_one()
    return rows


def baseline_fetch(session: Session, metric: str, units: list[str], period: Period) -> int:
    """The same rows fetched with SQLAlchemy Core (driver and column types, no ORM, no ledger)."""
    rows = 0
    for unit in units:
        table, where = _loader_where(metric, unit, period)
        query = select(table).where(where)
        if metric == "fixed_doctor":
            query = query.order_by(table.c.stamp.desc()).limit(1)
        rows += len(session.execute(query).all())
    return rows


# -- measuring -----------------------------------------------------------------------------------------


def months_of(start: date, days: int) -> list[Period]:
    last = start + timedelta(days=days - 1)
    out = []
    first = date(start.year, start.month, 1)
    while first <= last:
        following = date(first.year + (first.month == 12), first.month % 12 + 1, 1)
        period = Period(first, following - timedelta(days=1))
        if period.start >= start and period.end <= last:
            out.append(period)
        first = following
    return out


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    result = call()
    return (time.perf_counter() - started) * 1000, result


def measure(url: str, regions: list[str], months: list[Period], repeat: int) -> dict[str, dict[str, list[float]]]:
    """{metric: {row: [milliseconds, ...]}} for rows cold, stored, warm, baseline, fetch, plus rows loaded."""
    from vardkoll.server.services import build_services
    from vardkoll.server.settings import ServerSettings
    from vardkoll.server.storage.tables import StoredFigure

    services = build_services(ServerSettings(database_url=url), apply_migrations=True)
    figures = FigureService(services.sessions, services.units, FigureCache())
    samples: dict[str, dict[str, list[float]]] = {metric: {row: [] for row in (*ROWS, "rows", "units")} for metric in METRICS}
    queries = [(region, period, metric) for period in months for region in regions for metric in METRICS]
    # Warm the connection pool and the registry (a running server has both); no stored figures yet.
    services.units.all_units()
    with services.sessions.begin() as session:
        session.execute(delete(StoredFigure))
    for region, period, metric in queries:
        elapsed, result = timed(lambda: figures.figures(services.units.units_of_region(region), metric, period))
        assert len(result) == len(services.units.units_of_region(region)) and all(r["data"]["no_data"] is False for r in result)
        samples[metric]["cold"].append(elapsed)
        samples[metric]["units"].append(len(result))
        done = sum(len(samples[m]["cold"]) for m in METRICS)
        if done % 32 == 0:
            print(f"  cold queries: {done}/{len(queries)}", file=sys.stderr, flush=True)
    for round_number in range(repeat):
        print(f"  stored and warm round {round_number + 1}/{repeat}", file=sys.stderr, flush=True)
        # Another server process (or this one after a restart): an empty figure cache, the stored figures.
        elsewhere = FigureService(services.sessions, services.units, FigureCache())
        elsewhere._compute = _must_not_compute  # type: ignore[method-assign]  # the benchmark proves the warm path never computes
        for region, period, metric in queries:
            units = services.units.units_of_region(region)
            elapsed, result = timed(lambda: elsewhere.figures(units, metric, period))
            samples[metric]["stored"].append(elapsed)
            elapsed, result = timed(lambda: figures.figures(services.units.units_of_region(region), metric, period))
            samples[metric]["warm"].append(elapsed)
            with services.sessions() as session:
                elapsed, rows = timed(lambda: baseline_count(session, metric, units, period))
            samples[metric]["baseline"].append(elapsed)
            samples[metric]["rows"].append(rows)
            with services.sessions() as session:
                elapsed, _ = timed(lambda: baseline_fetch(session, metric, units, period))
            samples[metric]["fetch"].append(elapsed)
    stats = figures.cache.stats
    expected_hits = repeat * sum(sum(samples[metric]["units"]) for metric in METRICS)
    assert stats.hits == expected_hits and stats.stale == 0, f"warm queries must all be cache hits: {stats}"
    services.engine.dispose()
    return samples


def _must_not_compute(*args: Any, **kwargs: Any) -> Any:
    raise AssertionError("a figure the cold pass stored was computed again")


ROWS = ("cold", "stored", "warm", "baseline", "fetch")


def report(label: str, samples: dict[str, dict[str, list[float]]]) -> dict[str, Any]:
    print(f"\n{label}")
    print(f"  {'metric':<13}{'row':<10}{'n':>5}{'p50 ms':>10}{'p95 ms':>10}{'max ms':>10}{'p95/base':>10}   rows per query (median)")
    document: dict[str, Any] = {}
    every: dict[str, list[float]] = {row: [] for row in ROWS}
    for metric in METRICS:
        rows = samples[metric]
        base = summary(rows["baseline"])["p95"]
        document[metric] = {}
        for row in ROWS:
            s = summary(rows[row])
            every[row].extend(rows[row])
            document[metric][row] = s
            extra = f"   {statistics.median(rows['rows']):,.0f}" if row == "baseline" else ""
            print(f"  {metric:<13}{row:<10}{s['n']:>5}{s['p50']:>10.1f}{s['p95']:>10.1f}{s['max']:>10.1f}{s['p95'] / base:>10.1f}{extra}")
    base = summary(every["baseline"])["p95"]
    document["all"] = {}
    for row in ROWS:
        s = summary(every[row])
        document["all"][row] = s
        print(f"  {'all':<13}{row:<10}{s['n']:>5}{s['p50']:>10.1f}{s['p95']:>10.1f}{s['max']:>10.1f}{s['p95'] / base:>10.1f}")
    for row in ("cold", "stored", "warm"):
        p95 = document["all"][row]["p95"]
        verdict = "met" if p95 < GOAL_P95_MS else "NOT met"
        print(f"  goal p95 < {GOAL_P95_MS:.0f} ms, {row}: {verdict} ({p95:.1f} ms)")
    return document


# -- PostgreSQL on demand ------------------------------------------------------------------------------


# -- main ----------------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--units", type=int, default=200)
    parser.add_argument("--region-count", type=int, default=10, help="regions the units are registered in (default 10: 20 units each)")
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--start", type=date.fromisoformat, default=date(2025, 1, 1))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--regions", type=int, default=4, help="regions to query (default 4)")
    parser.add_argument("--months", type=int, default=0, help="complete months to query, spread over the year (default: all)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds of warm queries (default 5)")
    parser.add_argument("--data-dir", type=Path, default=BENCH_DIR / "data")
    parser.add_argument("--rebuild", action="store_true", help="build the data again even if a cached file matches")
    parser.add_argument("--database-url", help="also measure on this PostgreSQL database (the data is copied in once)")
    parser.add_argument("--postgres", action="store_true", help="also measure on a throwaway PostgreSQL cluster")
    parser.add_argument("--no-sqlite", action="store_true", help="measure on PostgreSQL only")
    parser.add_argument("--json", type=Path, help="also write the numbers here")
    args = parser.parse_args()
    if args.units % args.region_count:
        parser.error("--units must be a multiple of --region-count")

    print(f"machine: {machine()}", flush=True)
    sqlite_path, meta = ensure_sqlite(args)
    print(
        f"data: {meta['units']} units in {meta['regions']} regions, {meta['days']} days from {meta['start']}: {meta['stored_events']:,} events "
        f"stored ({meta['rows']['calls']:,} calls, {meta['rows']['cases']:,} cases, {meta['rows']['doctor_visits']:,} doctor visits, "
        f"{meta['rows']['listing_snapshots']:,} snapshots); {sqlite_path.stat().st_size / 1e9:.1f} GB as SQLite; built by {meta['built_through']}"
    )
    months = months_of(args.start, args.days)
    if args.months:
        step = max(1, len(months) // args.months)
        months = months[::step][: args.months]
    regions = [
        region_of(i * (args.units // args.region_count) * max(1, args.region_count // args.regions), args.units // args.region_count)
        for i in range(args.regions)
    ]
    print(
        f"queries: regions {', '.join(regions)}; months {', '.join(p.start.strftime('%Y-%m') for p in months)}; metrics {', '.join(METRICS)}; "
        f"warm rounds {args.repeat}"
    )
    results: dict[str, Any] = {"machine": machine(), "data": meta, "regions": regions, "months": [p.start.isoformat() for p in months]}
    if not args.no_sqlite:
        # Measured in place: the server only reads (and brings the schema up to date, as it would).
        results["sqlite"] = report("SQLite", measure(f"sqlite:///{sqlite_path}", regions, months, args.repeat))
    postgres_urls: list[tuple[str, Any]] = []
    if args.database_url:
        postgres_urls.append((args.database_url, None))
    if args.postgres:
        postgres_urls.append(("", throwaway_postgres()))
    for url, context in postgres_urls:
        if context is not None:
            url = context.__enter__()
        try:
            ensure_postgres(url, sqlite_path, meta, args.rebuild)
            results["postgresql"] = report("PostgreSQL", measure(url, regions, months, args.repeat))
        finally:
            if context is not None:
                context.__exit__(None, None, None)
    print(f"\nload average after the run: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    if args.json:
        args.json.write_bytes(orjson.dumps(results, option=orjson.OPT_INDENT_2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
