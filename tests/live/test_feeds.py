"""Streams that show the same figures share one computation per change (server/live/feeds.py).

A fake subscription stands in for the hub's here; tests/integration/test_live.py proves the streams
against a real server, broker and database."""

from __future__ import annotations

import asyncio
import threading

import pytest

from vardkoll.server.live.feeds import Feeds, each_alone


class FakeSubscription:
    """The hub's Subscription: `wait` returns once a change was signalled."""

    def __init__(self, units) -> None:
        self.units = frozenset(units)
        self.changed = asyncio.Event()
        self.closed = False

    async def wait(self, timeout_s):
        await asyncio.wait_for(self.changed.wait(), timeout_s)
        self.changed.clear()
        return True

    def close(self) -> None:
        self.closed = True


class Counted:
    """A computation that counts its calls and can be held back, as a slow database would."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = threading.Event()
        self.release.set()
        self.fail = False

    def __call__(self) -> bytes:
        self.release.wait(10)
        self.calls += 1
        if self.fail:
            raise RuntimeError("database away")
        return f"figures {self.calls}".encode()


def run(scenario) -> None:
    """`asyncio.run(scenario())` in a thread of its own: the suite's Playwright driver keeps an event loop
    running in the main thread, where asyncio.run refuses to start another."""
    failures: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(scenario())
        except BaseException as error:  # noqa: BLE001  (re-raised in the test's thread below)
            failures.append(error)

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(60)
    assert not thread.is_alive(), "the scenario did not finish in 60 s"
    if failures:
        raise failures[0]


def _feeds():
    subscriptions = []

    def subscribe(units):
        subscriptions.append(FakeSubscription(units))
        return subscriptions[-1]

    return Feeds(subscribe), subscriptions


def test_streams_of_the_same_figures_share_each_computation():
    async def scenario():
        feeds, subscriptions = _feeds()
        compute = Counted()
        first, second = feeds.join("VC01 today", ["VC01"], compute), feeds.join("VC01 today", ["VC01"], compute)
        assert first is second and feeds.streams == 2 and len(subscriptions) == 1
        assert await first.first() == (b"figures 1", 1)
        assert await second.first() == (b"figures 1", 1)
        subscriptions[0].changed.set()
        assert await asyncio.gather(first.newer_than(1, 5), second.newer_than(1, 5)) == [(b"figures 2", 2)] * 2
        assert compute.calls == 2  # one per change, not one per stream

    run(scenario)


def test_changes_during_a_computation_make_one_more_and_a_slow_stream_skips_to_the_newest():
    async def scenario():
        feeds, subscriptions = _feeds()
        compute = Counted()
        feed = feeds.join("key", ["VC01"], compute)
        await feed.first()
        compute.release.clear()
        subscriptions[0].changed.set()
        await asyncio.sleep(0.05)  # the second computation has started and waits
        for _ in range(5):
            subscriptions[0].changed.set()  # five changes while it runs
        compute.release.set()
        seen, generation = [], 1
        while (newer := await feed.newer_than(generation, 0.3)) is not None:
            payload, generation = newer
            seen.append(payload)
        # One more computation for all five changes, and the stream ends on its figures (it may have
        # skipped the second ones if the third were ready before it looked).
        assert compute.calls == 3
        assert seen[-1] == b"figures 3" and set(seen) <= {b"figures 2", b"figures 3"}

    run(scenario)


def test_a_stream_without_changes_gets_nothing_until_its_heartbeat():
    async def scenario():
        feeds, _ = _feeds()
        feed = feeds.join("key", ["VC01"], Counted())
        _, generation = await feed.first()
        assert await feed.newer_than(generation, 0.1) is None

    run(scenario)


def test_the_feed_ends_with_its_last_stream_and_the_next_stream_gets_a_new_one():
    async def scenario():
        feeds, subscriptions = _feeds()
        compute = Counted()
        feed = feeds.join("key", ["VC01"], compute)
        again = feeds.join("key", ["VC01"], compute)
        await feed.first()
        feeds.leave("key", feed)
        assert not subscriptions[0].closed and feeds.streams == 1
        feeds.leave("key", again)
        assert subscriptions[0].closed and feeds.streams == 0
        fresh = feeds.join("key", ["VC01"], compute)
        assert fresh is not feed and await fresh.first() == (b"figures 2", 1)

    run(scenario)


def test_a_failed_first_computation_ends_its_streams_and_a_later_stream_tries_again():
    async def scenario():
        feeds, _ = _feeds()
        compute = Counted()
        compute.fail = True
        feed = feeds.join("key", ["VC01"], compute)
        with pytest.raises(RuntimeError, match="database away"):
            await feed.first()
        compute.fail = False
        retry = feeds.join("key", ["VC01"], compute)
        assert retry is not feed and await retry.first() == (b"figures 2", 1)
        feeds.leave("key", feed)
        feeds.leave("key", retry)
        assert feeds.streams == 0

    run(scenario)


def test_a_later_failure_keeps_the_last_figures_and_the_next_change_tries_again():
    async def scenario():
        feeds, subscriptions = _feeds()
        compute = Counted()
        feed = feeds.join("key", ["VC01"], compute)
        await feed.first()
        compute.fail = True
        subscriptions[0].changed.set()
        assert await feed.newer_than(1, 0.3) is None  # nothing new to show; the stream stays open
        compute.fail = False
        subscriptions[0].changed.set()
        assert await feed.newer_than(1, 5) == (b"figures 3", 2)

    run(scenario)


def test_a_stream_of_today_opened_after_midnight_gets_a_feed_of_its_own(monkeypatch):
    from datetime import date, datetime, timezone
    from types import SimpleNamespace

    from vardkoll.server.live import figures_of, stream
    from vardkoll.server.metrics import UnitConfig

    services = SimpleNamespace(units=SimpleNamespace(config=lambda unit: UnitConfig()))

    def at(moment):
        monkeypatch.setattr(figures_of, "datetime", SimpleNamespace(now=lambda tz: moment))
        return stream._feed_key(services, ["VC01"], ["telephone"], None, None)  # type: ignore[arg-type]  # a stand-in with only `units.config`

    evening = at(datetime(2026, 12, 6, 22, 58, tzinfo=timezone.utc))  # 23:58 in Stockholm
    night = at(datetime(2026, 12, 6, 23, 2, tzinfo=timezone.utc))  # 00:02 on 7 December
    assert evening != night
    assert at(datetime(2026, 12, 6, 12, 0, tzinfo=timezone.utc)) == evening  # the same day, the same feed
    # A stream of fixed dates shows the same whenever it is opened.
    monkeypatch.undo()
    fixed = stream._feed_key(services, ["VC01"], ["telephone"], date(2026, 12, 1), date(2026, 12, 6))  # type: ignore[arg-type]  # the same stand-in
    assert fixed == (("VC01",), ("telephone",), (date(2026, 12, 1), date(2026, 12, 6)))


def test_the_updates_waiting_while_one_is_computed_are_computed_as_one_batch():
    async def scenario():
        batches: list[int] = []

        def together(computes):
            batches.append(len(computes))
            return each_alone(computes)

        subscriptions: list[FakeSubscription] = []

        def subscribe(units):
            subscriptions.append(FakeSubscription(units))
            return subscriptions[-1]

        feeds = Feeds(subscribe, together)
        held, unit, region = Counted(), Counted(), Counted()
        other = feeds.join("VC09", ["VC09"], held)
        klinikvy = feeds.join("VC01", ["VC01"], unit)
        regionvy = feeds.join("region", ["VC01", "VC02"], region)
        for feed in (other, klinikvy, regionvy):
            await feed.first()
        held.release.clear()
        subscriptions[0].changed.set()
        await asyncio.sleep(0.05)  # VC09's update is being computed, alone
        subscriptions[1].changed.set()  # then a commit for VC01 changes both of its feeds
        subscriptions[2].changed.set()
        await asyncio.sleep(0.05)
        held.release.set()
        assert await klinikvy.newer_than(1, 5) == (b"figures 2", 2)
        assert await regionvy.newer_than(1, 5) == (b"figures 2", 2)
        assert batches == [1, 2]

    run(scenario)


def test_in_a_batch_a_stream_whose_figures_another_covers_is_cut_out_of_it():
    """`figures_of.together`: a unit's feed and its region's, as the same commit changes both, are one
    computation of the region's figures; the unit's bytes are those it would get alone."""
    from datetime import date
    from types import SimpleNamespace

    from vardkoll.server.live.figures_of import FiguresOf, together

    asked: list[list[str]] = []

    def figure_sets(units, wanted):
        asked.append(list(units))
        if "VC66" in units:
            raise RuntimeError("database away")
        return [[{"unit": unit, "metric": metric} for unit in units] for metric, _ in wanted]

    services = SimpleNamespace(figures=SimpleNamespace(figure_sets=figure_sets))
    day = date(2026, 12, 7)
    metrics = ("telephone", "assessment")
    unit = FiguresOf(services, ("VC02",), metrics, day, day)  # type: ignore[arg-type]  # a stand-in with only `figures.figure_sets`
    region = FiguresOf(services, ("VC01", "VC02", "VC03"), metrics, day, day)  # type: ignore[arg-type]  # the same stand-in
    broken = FiguresOf(services, ("VC66",), metrics, day, day)  # type: ignore[arg-type]  # the same stand-in
    other_period = FiguresOf(services, ("VC02",), metrics, day, date(2026, 12, 8))  # type: ignore[arg-type]  # the same stand-in

    alone = unit()
    asked.clear()
    results = together([unit, broken, region, other_period])
    assert asked == [["VC01", "VC02", "VC03"], ["VC66"], ["VC02"]]  # the region's, the broken one's, another period's
    assert results[0] == alone == b'event: figures\ndata: [{"unit":"VC02","metric":"telephone"},{"unit":"VC02","metric":"assessment"}]\n\n'
    assert isinstance(results[1], RuntimeError)
    assert results[2].startswith(b"event: figures\ndata: [") and results[3] == alone
