"""The figure cache (server/figures/cache.py): a cached figure is exactly what the stored rows give now.

Every test compares the cached service with the same service asked with `cached=False` (every figure
computed from the stored rows), and most run on both backends (`database_url`).
"""

from __future__ import annotations

import copy
import json
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Iterator

import orjson
import pytest
from sqlalchemy import update

from vardkoll.protocol import EventRejected, parse_event_line
from vardkoll.server.figures import day_parts
from vardkoll.server.figures import service as figure_service
from vardkoll.server.figures.cache import FigureCache, figure_key, settings_stamp
from vardkoll.server.ingest.service import Source
from vardkoll.server.metrics import METRICS, Period, UnitConfig
from vardkoll.server.services import Services, build_services
from vardkoll.server.settings import ServerSettings
from vardkoll.server.storage.registry_tables import DeviceRow, TargetRow, UnitRow

FIXTURES = Path(__file__).parents[1] / "fixtures"
SCENARIOS = sorted(FIXTURES.glob("*/*.expected.json"))
HTTP = Source("http")
VC02, VC10 = "SE2321000016-VC02", "SE2321000016-VC10"
TWO_UNITS = FIXTURES / "cases" / "two-units.jsonl"
DAY = Period(date(2026, 5, 4), date(2026, 5, 4))
STOCKHOLM_SUMMER = timezone(timedelta(hours=2))


# -- helpers ---------------------------------------------------------------------------------------------


@pytest.fixture
def services(database_url: str) -> Iterator[Services]:
    opened = build_services(ServerSettings(database_url=database_url), apply_migrations=True)
    yield opened
    opened.engine.dispose()


def items_of(path: Path) -> list[Any]:
    items: list[Any] = []
    for line in path.read_bytes().splitlines():
        if line.strip():
            try:
                items.append(parse_event_line(line))
            except EventRejected as exc:
                items.append(exc)
    return items


def event(**fields: Any) -> Any:
    return parse_event_line(orjson.dumps({"v": 1, **fields}))


def at(clock: str) -> str:
    return f"2026-05-04T{clock}+02:00"


def fresh(services: Services, unit: str, metric: str, period: Period = DAY, as_of: datetime | None = None) -> dict[str, Any]:
    return services.figures.figure(unit, metric, period, as_of, cached=False)


def cached(services: Services, unit: str, metric: str, period: Period = DAY, as_of: datetime | None = None) -> dict[str, Any]:
    return services.figures.figure(unit, metric, period, as_of)


class LoadCounter:
    """Counts how often the service loads stored rows (each call is one computed figure)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls = 0
        for name in ("load_calls", "load_cases", "load_snapshots", "load_visits"):
            original = getattr(figure_service, name)
            monkeypatch.setattr(figure_service, name, self._counting(original))
        # Telephone and assessment figures sum day parts; they load rows only for days whose parts
        # are missing or stale, once per figure computed (several units per call: one count per unit).
        ledgers = day_parts._ledgers

        def counted_ledgers(session: Any, metric: str, days: dict[str, Any], configs: dict[str, Any], kept: Any = None) -> dict[str, Any]:
            self.calls += len(days)
            return ledgers(session, metric, days, configs, kept)

        monkeypatch.setattr(day_parts, "_ledgers", counted_ledgers)
        # Continuity figures come from SQL sums, several units per call: one count per figure.
        continuity = figure_service.continuity_figures

        def counted_continuity(session: Any, requests: list[Any], configs: dict[str, Any], *kept: Any) -> list[dict[str, Any]]:
            self.calls += len(requests)
            return continuity(session, requests, configs, *kept)

        monkeypatch.setattr(figure_service, "continuity_figures", counted_continuity)
        latest_snapshots = figure_service.load_latest_snapshots

        def counted_snapshots(session: Any, units: list[str], cutoff: datetime) -> dict[str, Any]:
            self.calls += len(units)
            return latest_snapshots(session, units, cutoff)

        monkeypatch.setattr(figure_service, "load_latest_snapshots", counted_snapshots)

    def _counting(self, original):
        def wrapper(*args, **kwargs):
            self.calls += 1
            return original(*args, **kwargs)

        return wrapper


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> LoadCounter:
    return LoadCounter(monkeypatch)


@pytest.fixture
def two_units(services: Services) -> Services:
    report = services.ingest.ingest(items_of(TWO_UNITS), HTTP)
    assert report.units_changed == {VC02, VC10}
    return services


# -- while nothing changes -------------------------------------------------------------------------------


def test_a_cached_figure_is_returned_unchanged_while_nothing_changes(two_units, loads):
    first = {metric: cached(two_units, VC02, metric) for metric in METRICS}
    assert loads.calls == len(METRICS)
    for _ in range(3):
        assert {metric: cached(two_units, VC02, metric) for metric in METRICS} == first
    assert loads.calls == len(METRICS), "repeated requests are answered from the cache"
    assert first == {metric: fresh(two_units, VC02, metric) for metric in METRICS}


def test_a_caller_changing_a_returned_figure_does_not_change_the_cached_one(two_units):
    for _ in range(2):  # computed now, then from the cache: either way the caller's own top-level dict
        figure = cached(two_units, VC02, "assessment")
        expected = json.loads(orjson.dumps(figure))
        figure["numerator"] = 999
        # The nested values are shared with the kept figure, the data block with every answer of the
        # unit while its activity and devices stand: changing them is refused, loudly.
        with pytest.raises(TypeError, match="read-only"):
            figure["data"]["devices"] = 42
        with pytest.raises(TypeError, match="read-only"):
            figure["details"]["by_profession"]["doctor"] = 5
        with pytest.raises(TypeError, match="read-only"):
            figure["details"].pop("pending")
        assert cached(two_units, VC02, "assessment") == expected


def test_a_deep_copy_of_an_answer_from_the_cache_can_be_changed(two_units):
    cached(two_units, VC02, "assessment")
    from_cache = cached(two_units, VC02, "assessment")
    expected = json.loads(orjson.dumps(from_cache))
    mine = copy.deepcopy(from_cache)
    mine["details"]["by_profession"]["doctor"] = 5
    mine["details"].pop("pending")
    assert mine != expected and json.loads(orjson.dumps(from_cache)) == expected
    assert cached(two_units, VC02, "assessment") == expected


def test_repeated_events_change_nothing_and_keep_the_cache(two_units, loads):
    before = cached(two_units, VC10, "telephone")
    report = two_units.ingest.ingest(items_of(TWO_UNITS), HTTP)
    assert report.new == 0 and report.units_changed == set()
    calls = loads.calls
    assert cached(two_units, VC10, "telephone") == before
    assert loads.calls == calls


# -- ingest invalidates ----------------------------------------------------------------------------------


def test_an_ingest_for_a_unit_gives_the_freshly_computed_figure(two_units, loads):
    before = {unit: {metric: cached(two_units, unit, metric) for metric in METRICS} for unit in (VC02, VC10)}
    events = [
        event(id="new-1", type="call.answered", unit=VC02, at=at("11:02:00"), call="call-shared"),
        event(id="new-2", type="care.assessed", unit=VC02, at=at("15:00:00"), case="case-shared", profession="nurse", form="phone"),
        event(
            id="new-3",
            type="visit.completed",
            unit=VC02,
            at=at("16:00:00"),
            patient="pat-u02b",
            practitioner="doc-carl",
            profession="doctor",
            listed=True,
            fixed_doctor="doc-bert",
        ),
        event(id="new-4", type="listing.snapshot", unit=VC02, at=at("03:00:00"), listed=40, named_doctor=20),
    ]
    assert two_units.ingest.ingest(events, HTTP).units_changed == {VC02}
    calls = loads.calls

    after = {metric: cached(two_units, VC02, metric) for metric in METRICS}

    assert loads.calls == calls + len(METRICS), "every figure of the changed unit is computed again"
    assert after == {metric: fresh(two_units, VC02, metric) for metric in METRICS}
    for metric in METRICS:
        assert after[metric] != before[VC02][metric], f"{metric}: the new events change the figure"


def test_other_units_entries_survive_an_ingest(two_units, loads):
    before = {metric: cached(two_units, VC10, metric) for metric in METRICS}
    cached(two_units, VC02, "telephone")
    two_units.ingest.ingest([event(id="new-1", type="call.answered", unit=VC02, at=at("11:02:00"), call="call-shared")], HTTP)
    calls = loads.calls

    assert [cached(two_units, VC02, "telephone"), cached(two_units, VC10, "telephone")] == two_units.figures.figures(
        [VC02, VC10], "telephone", DAY, cached=False
    )
    assert loads.calls == calls + 1 + 2, "only VC02 was computed again (then both, uncached)"
    calls = loads.calls
    assert {metric: cached(two_units, VC10, metric) for metric in METRICS} == before
    assert loads.calls == calls


def test_a_region_request_computes_only_the_units_that_changed(two_units, loads):
    both = two_units.figures.figures([VC02, VC10], "telephone", DAY)
    two_units.ingest.ingest([event(id="new-1", type="call.offered", unit=VC10, at=at("13:00:00"), call="call-late")], HTTP)
    calls = loads.calls
    again = two_units.figures.figures([VC02, VC10], "telephone", DAY)
    assert loads.calls == calls + 1
    assert again[0] == both[0]
    assert again[1]["denominator"] == both[1]["denominator"] + 1
    assert again == two_units.figures.figures([VC02, VC10], "telephone", DAY, cached=False)


def test_a_first_event_for_a_unit_without_data_invalidates_its_empty_figure(services):
    empty = cached(services, VC02, "telephone")
    assert empty["denominator"] == 0 and empty["data"]["no_data"] is True
    services.ingest.ingest([event(id="first", type="call.offered", unit=VC02, at=at("09:00:00"), call="call-one")], HTTP)
    figure = cached(services, VC02, "telephone")
    assert figure["denominator"] == 1 and figure["data"]["no_data"] is False
    assert figure == fresh(services, VC02, "telephone")


def test_a_commit_landing_while_a_request_reads_leaves_no_stale_figure(two_units, monkeypatch):
    """The version is read before the rows: a commit in between can only make the entry newer than its
    version, never older, so the next request (which reads the new version) recomputes."""
    cached(two_units, VC02, "telephone")
    read_activity = figure_service.FigureService._activity
    commits = []

    def activity_then_commit(session, units, with_devices=False):
        versions = read_activity(session, units, with_devices)
        if not commits:
            commits.append(two_units.ingest.ingest([event(id="racing", type="call.answered", unit=VC02, at=at("11:01:00"), call="call-shared")], HTTP))
        return versions

    monkeypatch.setattr(figure_service.FigureService, "_activity", staticmethod(activity_then_commit))
    cached(two_units, VC02, "telephone")  # filed under the old version, computed from old or new rows
    monkeypatch.undo()
    assert commits and commits[0].units_changed == {VC02}
    figure = cached(two_units, VC02, "telephone")
    assert figure == fresh(two_units, VC02, "telephone")
    assert figure["numerator"] == 1


# -- as_of and period ------------------------------------------------------------------------------------


def test_the_cache_never_answers_for_another_as_of_or_period(two_units):
    moments = [
        None,
        datetime(2026, 5, 4, 9, 30, tzinfo=STOCKHOLM_SUMMER),
        datetime(2026, 5, 4, 12, 0, 30, tzinfo=STOCKHOLM_SUMMER),
        datetime(2026, 5, 4, 7, 0, tzinfo=timezone.utc),
    ]
    periods = [DAY, Period(date(2026, 5, 1), date(2026, 5, 31)), Period(date(2026, 5, 5), date(2026, 5, 5)), Period(date(2026, 5, 3), date(2026, 5, 4))]
    for _ in range(2):  # the second round is answered from the cache
        for period in periods:
            for moment in moments:
                for unit in (VC02, VC10):
                    for metric in METRICS:
                        assert cached(two_units, unit, metric, period, moment) == fresh(two_units, unit, metric, period, moment), (unit, metric, period, moment)
    # Different answers for different moments, so the comparison above means something.
    assert cached(two_units, VC10, "telephone", DAY, moments[1])["denominator"] == 2
    assert cached(two_units, VC10, "telephone", DAY, None)["denominator"] == 3


def test_the_same_instant_in_another_offset_is_the_same_entry(two_units, loads):
    summer = datetime(2026, 5, 4, 9, 30, tzinfo=STOCKHOLM_SUMMER)
    first = cached(two_units, VC10, "telephone", DAY, summer)
    calls = loads.calls
    assert cached(two_units, VC10, "telephone", DAY, summer.astimezone(timezone.utc)) == first
    assert loads.calls == calls


# -- the registry ----------------------------------------------------------------------------------------


def test_a_target_change_invalidates_once_the_directory_reloads(two_units):
    before = cached(two_units, VC02, "assessment")
    assert before["target"] == 0.9
    with two_units.sessions.begin() as session:
        session.add(TargetRow(unit=VC02, metric="assessment", target=0.95, valid_from=date(2026, 1, 1)))
    two_units.units.invalidate()  # as the units API does after a change (other processes: within the TTL)
    after = cached(two_units, VC02, "assessment")
    assert after["target"] == 0.95
    assert after == fresh(two_units, VC02, "assessment")


@pytest.mark.parametrize(
    "change, denominator",
    [({"opening_hours": '{"mon": [["10:00", "17:00"]]}'}, 1), ({"time_zone": "Pacific/Kiritimati"}, 2)],
    ids=["opening-hours", "time-zone"],
)
def test_a_unit_settings_change_invalidates(two_units, change, denominator):
    """Offers outside opening hours do not count; in UTC+14 the day ends at 11:59:59+02:00, before the noon call."""
    with two_units.sessions.begin() as session:
        session.add(UnitRow(unit=VC10, name="Vårdcentralen Tio", region="Region Test"))
    two_units.units.invalidate()
    before = cached(two_units, VC10, "telephone")
    assert before["denominator"] == 3
    with two_units.sessions.begin() as session:
        session.execute(update(UnitRow).where(UnitRow.unit == VC10).values(**change))
    two_units.units.invalidate()
    after = cached(two_units, VC10, "telephone")
    assert after == fresh(two_units, VC10, "telephone")
    assert after["denominator"] == denominator


def test_settings_stamp_follows_every_setting():
    base = UnitConfig()
    assert settings_stamp(base) == settings_stamp(UnitConfig())
    others = [
        UnitConfig(time_zone="Europe/Helsinki"),
        UnitConfig(targets={**base.targets, "telephone": 0.8}),
        UnitConfig(opening_hours={0: ((datetime(2026, 1, 1, 8).time(), datetime(2026, 1, 1, 17).time()),)}),
        UnitConfig(unreached_callback_counts=False),
    ]
    stamps = {settings_stamp(config) for config in others}
    assert len(stamps) == len(others) and settings_stamp(base) not in stamps


# -- the data block --------------------------------------------------------------------------------------


def test_the_freshness_block_is_read_anew_on_every_request(two_units, loads):
    with two_units.sessions.begin() as session:
        session.add(DeviceRow(unit=VC02, device="pi-a", registered_at=datetime.now(timezone.utc), status="online"))
    first = cached(two_units, VC02, "telephone")
    assert first["data"]["devices"] == 1 and first["data"]["devices_offline"] == []
    calls = loads.calls
    with two_units.sessions.begin() as session:
        session.execute(update(DeviceRow).where(DeviceRow.unit == VC02).values(status="offline"))
    second = cached(two_units, VC02, "telephone")
    assert loads.calls == calls, "the figure itself still comes from the cache"
    assert second["data"]["devices_offline"] == ["pi-a"]
    assert {k: v for k, v in second.items() if k != "data"} == {k: v for k, v in first.items() if k != "data"}


# -- the scenarios ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("expected_path", SCENARIOS, ids=lambda p: p.name.removesuffix(".expected.json"))
def test_cached_figures_equal_uncached_ones_on_every_scenario(expected_path, services):
    document = json.loads(expected_path.read_text())
    args, results = document["replay_args"], document["expected"]["results"]
    period = Period(date.fromisoformat(args["from"]), date.fromisoformat(args["to"]))
    as_of = datetime.fromisoformat(args["as_of"]) if "as_of" in args else None
    services.ingest.ingest(items_of(expected_path.with_name(expected_path.name.replace(".expected.json", ".jsonl"))), HTTP)
    units = sorted({r["unit"] for r in results})
    for metric in METRICS:
        uncached = services.figures.figures(units, metric, period, as_of, cached=False)
        assert services.figures.figures(units, metric, period, as_of) == uncached  # computed and stored
        assert services.figures.figures(units, metric, period, as_of) == uncached  # from the cache
    # And both are replay's figures (without the keys only the API adds).
    for want in results:
        got = json.loads(orjson.dumps(cached(services, want["unit"], want["metric"], period, as_of)))
        assert {k: v for k, v in got.items() if k not in ("definition_version", "data")} == want


# -- the LRU itself --------------------------------------------------------------------------------------


def test_the_cache_holds_at_most_max_entries_and_drops_the_least_recently_used():
    cache = FigureCache(max_entries=2)
    stamp = settings_stamp(UnitConfig())
    keys = [figure_key(f"SE2321000016-VC0{i}", "telephone", DAY, None) for i in range(3)]
    cache.put(keys[0], 1, stamp, {"n": 0})
    cache.put(keys[1], 1, stamp, {"n": 1})
    assert cache.get(keys[0], 1, stamp) == {"n": 0}  # now the most recently used
    cache.put(keys[2], 1, stamp, {"n": 2})
    assert len(cache) == 2 and cache.stats.evictions == 1
    assert cache.get(keys[1], 1, stamp) is None
    assert cache.get(keys[0], 1, stamp) == {"n": 0}
    assert cache.get(keys[2], 1, stamp) == {"n": 2}
    assert cache.get(keys[2], 2, stamp) is None, "another data version"
    assert cache.get(keys[2], 1, settings_stamp(UnitConfig(time_zone="UTC"))) is None, "other settings"


def test_a_cache_of_size_zero_stores_nothing():
    cache = FigureCache(max_entries=0)
    key = figure_key(VC02, "telephone", DAY, None)
    cache.put(key, 1, None, {"n": 1})
    assert len(cache) == 0 and cache.get(key, 1, None) is None
