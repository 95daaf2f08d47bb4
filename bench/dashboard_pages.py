"""How long the dashboard's pages take to render on realistic data (not a timed test: numbers to read).

    .venv/bin/python bench/dashboard_pages.py [--units 8] [--days 400]

Builds once (cached under bench/data/) `--days` of generated events (vardkoll.simulation) for `--units`
clinics in one region, through the server's own ingest, on SQLite. Then renders, in-process with
FastAPI's TestClient and an admin session:

  Klinikvy   /enhet/{unit}?dag=LAST   (day and month figures, hourly curve, 12 weeks + 12 months of
                                       trends for four metrics: 96 trend figures)
  Regionvy   /region/{region}?till=LAST  (all units, four metrics, small multiples, whole year)
  API        /api/v1/compliance?region=  (the month of telephone, the year of assessment, the month
                                       of continuity: its 18-month window of doctor visits)

each `cold` (as after a restart: the figure cache and the kept days, parts and sums emptied,
`forget_in_memory`; the database pages are warm in the OS cache), `warm` (the same request again:
the figure cache answers; `warm max` the slowest of those, where a full garbage collection shows),
`new event` (one event, as it happens, for the first unit: its figures for the periods that reach today, the
current week and month, are computed again; see server/figures/store.py) and, with `--changed N`,
`N changed` (one new event for each of N units spread over the region before each request: what a page
meets while traffic flows, `bench/country_traffic.py` measures it with the traffic; with `--live` the
region's live update is computed after the events and before the request, as in a web slot that
serves the region's live stream; with `--every-metric` each of those units also gets a care contact and a
doctor visit, so continuity's and the assessment's figures change too, as they do in the traffic). The generated data ends on
23 Nov 2026, the day this was first measured; on a later day no period shown reaches today and
"after a new event" is close to "warm".
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

BENCH_DIR = Path(__file__).resolve().parent
REGION = "Region Bänk"
ADMIN = "bench-Admin-token-0123456789ab"  # strong enough for the server's check


def build(path: Path, units: int, days: int, start: date) -> None:
    from vardkoll.protocol import parse_event_line
    from vardkoll.server.ingest.service import Source
    from vardkoll.server.services import build_services
    from vardkoll.server.settings import ServerSettings
    from vardkoll.server.storage.registry_tables import UnitRow
    from vardkoll.simulation import generate

    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    services = build_services(ServerSettings(database_url=f"sqlite:///{partial}"), apply_migrations=True)
    batch: list = []
    seen: set[str] = set()
    stored = 0
    started = time.perf_counter()
    for event in generate(seed=7, units=units, days=days, start_date=start):
        if event["unit"] not in seen:
            seen.add(event["unit"])
            with services.sessions.begin() as session:
                session.add(UnitRow(unit=event["unit"], name=f"Vårdcentral {len(seen)}", region=REGION))
            services.units.invalidate()
        batch.append(parse_event_line(orjson.dumps(event)))
        if len(batch) == 20_000:
            stored += services.ingest.ingest(batch, Source("http")).new
            batch = []
            print(f"  {stored:,} events stored ({stored / (time.perf_counter() - started):,.0f}/s)", file=sys.stderr, end="\r")
    stored += services.ingest.ingest(batch, Source("http")).new
    services.engine.dispose()
    partial.replace(path)
    print(f"\n  built {stored:,} events for {len(seen)} units in {time.perf_counter() - started:.0f} s", file=sys.stderr)


# Tables copied for each cloned unit (the events archive is left out: no figure reads it).
CLONED_TABLES = ("units", "calls", "cases", "listing_snapshots", "doctor_visits", "unit_activity", "unit_day_versions", "figure_day_parts")


def clone(source: Path, path: Path, units: int) -> None:
    """A region of `units` clinics from the generated ones: each generated unit's metric-state rows
    copied under new unit ids (its HSA-id with a suffix), in SQL. Building that many through ingest
    would take hours on this machine; the copies have the same rows, so the same per-unit work."""
    import sqlite3

    partial = path.with_name(path.name + ".partial")
    partial.unlink(missing_ok=True)
    started = time.perf_counter()
    with sqlite3.connect(partial) as target:
        target.execute("ATTACH DATABASE ? AS generated", (str(source),))
        schema = target.execute("SELECT sql FROM generated.sqlite_master WHERE sql IS NOT NULL AND name NOT LIKE 'sqlite_%'").fetchall()
        for (sql,) in schema:
            target.execute(sql)
        target.execute("INSERT INTO alembic_version SELECT * FROM generated.alembic_version")
        originals = [unit for (unit,) in target.execute("SELECT unit FROM generated.units ORDER BY unit")]
        copies = 0
        for table in CLONED_TABLES:
            columns = [row[1] for row in target.execute(f"PRAGMA generated.table_info({table})")]
            listed = ", ".join(f'"{c}"' for c in columns)
            chosen = ", ".join("?" if c == "unit" else ("'Vårdcentral ' || ?" if c == "name" else f'"{c}"') for c in columns)
            copies = 0
            for k in range(-(-units // len(originals))):
                for unit in originals:
                    if copies == units:
                        break
                    new = unit if k == 0 else f"{unit}K{k:02d}"
                    params = [new] + ([f"{copies + 1}"] if "name" in columns else []) + [unit]
                    target.execute(f'INSERT INTO "{table}" ({listed}) SELECT {chosen} FROM generated."{table}" WHERE unit = ?', params)
                    copies += 1
            target.commit()
        target.execute("UPDATE figure_day_parts SET body = NULL, parts_version = NULL")
        target.commit()
        target.execute("ANALYZE")
    partial.replace(path)
    print(f"  cloned {len(originals)} units into {copies} in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def serving_gc() -> Any:
    """The garbage collector as a `vardkoll server` process runs it (server/gc_tuning.py), where the
    tree being measured has that; CPython's defaults on an older tree."""
    try:
        from vardkoll.server.gc_tuning import tuned_for_serving
    except ImportError:
        print("  garbage collector: CPython's defaults (this tree does not tune it)")
        return contextlib.nullcontext()
    print("  garbage collector: tuned as a server process tunes it")
    return tuned_for_serving()


def forget_in_memory(figures: Any) -> None:
    """What a restart forgets: the figure cache and, where the tree has them, the kept days, the parts
    and sums computed lately and the data blocks (clearing the cache alone let a "cold" page reuse
    what the round before had counted)."""
    figures.cache.clear()
    for name in ("kept_ledgers", "recent_parts", "freshness"):
        kept = getattr(figures, name, None)
        if kept is not None:
            setattr(figures, name, type(kept)())


def new_calls(units: list[str], every_metric: bool = False) -> list[dict[str, Any]]:
    """One call offered now for each of `units`, in one batch; `every_metric`: also a care contact and a
    doctor visit each, so that every metric's figures of those units change (as the country's traffic does)."""
    now = datetime.now(timezone.utc).isoformat()
    events = []
    for n, unit in enumerate(units):
        key = f"{time.time_ns()}-{n}"
        events.append({"v": 1, "id": f"bench-new-{key}", "type": "call.offered", "unit": unit, "at": now, "call": f"call-bench-{key}"})
        if every_metric:
            events.append(
                {
                    "v": 1,
                    "id": f"bench-contact-{key}",
                    "type": "care.contact",
                    "unit": unit,
                    "at": now,
                    "case": f"case-bench-{key}",
                    "listed": True,
                    "channel": "phone",
                }
            )
            visit = {"patient": f"patient-bench-{key}", "practitioner": "doctor-bench", "profession": "doctor", "listed": True}
            events.append({"v": 1, "id": f"bench-visit-{key}", "type": "visit.completed", "unit": unit, "at": now, **visit})
    return events


def timed(client, path: str, rounds: int, headers: dict[str, str] | None = None) -> list[float]:
    result = []
    for _ in range(rounds):
        started = time.perf_counter()
        response = client.get(path, headers=headers or {})
        result.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (path, response.status_code, response.text[:300])
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--units", type=int, default=8)
    parser.add_argument("--days", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default="rows,day parts", help="which paths to measure (default both: rows = the path before day parts)")
    parser.add_argument("--skip-first", action="store_true", help="do not time the first computation of the day parts (fill them untimed)")
    parser.add_argument("--postgres", action="store_true", help="measure on a throwaway PostgreSQL cluster (the tables copied from the SQLite file)")
    parser.add_argument("--clone", type=int, default=0, help="measure a region of this many units: copies of the generated ones")
    parser.add_argument(
        "--end",
        type=date.fromisoformat,
        default=datetime.now(timezone.utc).date(),
        help="the last day of generated events (default today: the running month is shown)",
    )
    parser.add_argument(
        "--shown",
        type=date.fromisoformat,
        default=None,
        help="the day the pages show and the API asks up to (default --end); today on data of an earlier --end measures the running month",
    )
    parser.add_argument(
        "--changed",
        type=int,
        default=0,
        help="also time each page after one new event for each of this many units (what a page meets while traffic flows)",
    )
    parser.add_argument(
        "--live",
        action="store_true",
        help="with --changed: before each such request, compute the region's live update (its four metrics of today), as a web slot"
        " that serves the region's live stream has done by the time a page comes",
    )
    parser.add_argument(
        "--every-metric",
        action="store_true",
        help="with --changed: each changed unit also gets a care contact and a doctor visit, not only a call (every metric's figures change)",
    )
    parser.add_argument("--url", help="measure this database instead (say a PostgreSQL an earlier --postgres run left, or one copied once for two runs)")
    args = parser.parse_args()
    last = args.end
    start = last - timedelta(days=args.days - 1)
    if args.url:
        return measure(args.url, args.url.split(":", 1)[0], args, last - timedelta(days=args.days - 1), last)
    path = BENCH_DIR / "data" / f"dashboard-{args.units}u-{args.days}d-{last}.sqlite"
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        build(path, args.units, args.days, start)
    if args.clone:
        source, path = path, path.with_name(f"dashboard-{args.units}u-{args.days}d-{last}-as-{args.clone}.sqlite")
        if not path.exists():
            clone(source, path, args.clone)

    if args.postgres:
        from bench_common import throwaway_postgres

        with throwaway_postgres() as url:
            copy_to_postgres(path, url)
            return measure(url, "PostgreSQL", args, start, last)
    return measure(f"sqlite:///{path}", "SQLite", args, start, last)


def copy_to_postgres(path: Path, url: str) -> None:
    """The registry and metric-state tables of the SQLite file, copied into a migrated PostgreSQL database."""
    from sqlalchemy import select

    from vardkoll.server.storage import make_engine, migrate
    from vardkoll.server.storage.tables import SQLModel

    engine, source = make_engine(url), make_engine(f"sqlite:///{path}")
    migrate(engine)
    started = time.perf_counter()
    for name in CLONED_TABLES:
        table = SQLModel.metadata.tables[name]
        columns = [c.name for c in table.columns]
        with source.connect() as reader, engine.begin() as writer:
            cursor = writer.connection.driver_connection.cursor()  # type: ignore[union-attr]  # psycopg connection under the DBAPI wrapper
            result = reader.execution_options(yield_per=50_000).execute(select(*[table.c[c] for c in columns]))
            with cursor.copy(f'COPY "{name}" (' + ", ".join(f'"{c}"' for c in columns) + ") FROM STDIN") as copy:
                for row in result:
                    copy.write_row(tuple(row))
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.exec_driver_sql("VACUUM ANALYZE")
    print(f"  copied into PostgreSQL in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    source.dispose()
    engine.dispose()


def measure(url: str, backend: str, args: argparse.Namespace, start: date, last: date) -> int:
    from fastapi.testclient import TestClient

    from vardkoll.server.app import create_app
    from vardkoll.server.services import build_services
    from vardkoll.server.settings import ServerSettings
    from vardkoll.server.storage.registry_tables import UnitRow
    from vardkoll.server.web import web_router
    from sqlalchemy import text
    from bench_common import machine

    settings = ServerSettings(database_url=url, admin_token=ADMIN, dev=False)
    services = build_services(settings, apply_migrations=True)
    app = create_app(settings, services, background=False)
    if not any(getattr(route, "path", None) == "/logga-in" for route in app.routes):
        app.include_router(web_router)
    with services.sessions() as session:
        all_units = [row[0] for row in session.query(UnitRow.unit).order_by(UnitRow.unit)]

    def live_update() -> None:
        """What the region's live stream computes after a change (server/live/figures_of.py)."""
        from vardkoll.server.live.figures_of import FiguresOf
        from vardkoll.server.metrics import METRICS

        FiguresOf(services, tuple(all_units), tuple(METRICS), None, None)()

    unit = all_units[0]
    # Spread over the region, as traffic would be: every k-th unit.
    changing = all_units[:: max(1, len(all_units) // args.changed)][: args.changed] if args.changed else []
    shown = args.shown or last
    year = f"from={shown.replace(month=1, day=1)}&to={shown}"
    month = f"from={shown.replace(day=1)}&to={shown}"
    pages = {
        "Klinikvy": f"/enhet/{unit}?dag={shown}",
        "Regionvy": f"/region/{quote(REGION)}?till={shown}",
        "API month": f"/api/v1/compliance?region={quote(REGION)}&metric=telephone&{month}",
        "API year": f"/api/v1/compliance?region={quote(REGION)}&metric=assessment&{year}",
        "API cont.": f"/api/v1/compliance?region={quote(REGION)}&metric=continuity&{month}",
    }
    print(machine())
    units = f"{args.clone} units (copies of {args.units} generated)" if args.clone else f"{args.units} units"
    print(f"{units}, {args.days} days of generated events ({start} – {last}), pages of {shown}, {backend}; ms per request, median of {args.rounds}")
    print("  cold: a new process's empty figure cache (stored figures and kept day parts in the database stay, as after a restart)")
    print("  first: day parts not kept yet (as after the migration, or a settings change for every unit)")
    bearer = {"Authorization": f"Bearer {ADMIN}"}
    with TestClient(app) as client, serving_gc():
        client.post("/logga-in", data={"token": ADMIN, "nasta": "/"})
        results: dict[tuple[str, str], dict[str, float]] = {}
        for mode in args.modes.split(","):
            services.figures.use_day_parts = mode == "day parts"
            for name, page in pages.items():
                headers = bearer if page.startswith("/api") else {}
                row: dict[str, float] = {}
                if mode == "day parts" and args.skip_first:
                    timed(client, page, 1, headers)  # keeps the day parts this page needs, untimed
                elif mode == "day parts":
                    first = []
                    for _ in range(args.rounds):
                        with services.sessions.begin() as session:
                            session.execute(text("UPDATE figure_day_parts SET body = NULL, parts_version = NULL"))
                        forget_in_memory(services.figures)
                        first += timed(client, page, 1, headers)
                    row["first"] = statistics.median(first)
                cold = []
                for _ in range(args.rounds):
                    forget_in_memory(services.figures)
                    cold += timed(client, page, 1, headers)
                row["cold"] = statistics.median(cold)
                warm = timed(client, page, args.rounds, headers)
                row["warm"], row["warm max"] = statistics.median(warm), max(warm)
                fresh = []
                for _ in range(args.rounds):
                    client.post("/api/v1/events", content=orjson.dumps(new_calls([unit])), headers=bearer)
                    fresh += timed(client, page, 1, headers)
                row["new event"] = statistics.median(fresh)
                if changing:
                    moved = []
                    for _ in range(args.rounds):
                        client.post("/api/v1/events", content=orjson.dumps(new_calls(changing, args.every_metric)), headers=bearer)
                        if args.live:
                            live_update()
                        moved += timed(client, page, 1, headers)
                    row[f"{len(changing)} changed{' (all metrics)' if args.every_metric else ''}{' after live' if args.live else ''}"] = statistics.median(
                        moved
                    )
                results[(mode, name)] = row
                print(f"  {mode:9} {name:9} " + "   ".join(f"{key} {value:7.0f}" for key, value in row.items()), flush=True)
        if len(args.modes.split(",")) == 2:
            print(
                "  ratio day parts / rows (cold): "
                + ", ".join(f"{name} {results[('day parts', name)]['cold'] / results[('rows', name)]['cold']:.3f}" for name in pages)
            )
    services.engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
