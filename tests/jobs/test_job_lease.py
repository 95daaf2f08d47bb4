"""The job lease: one holder at a time, on SQLite and PostgreSQL, even when holders race for it."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete

from vardkoll.server.jobs import current_holder, make_holder_id, release, try_acquire
from vardkoll.server.services import Services
from vardkoll.server.storage.registry_tables import Lease

T0 = datetime(2026, 3, 10, 12, 0, tzinfo=timezone.utc)
TTL_S = 30.0
NAME = "vardkoll-jobs"


def test_the_first_holder_gets_the_lease_and_the_second_does_not(services: Services) -> None:
    assert try_acquire(services.sessions, NAME, "host-a:1:aa", TTL_S, T0)
    assert not try_acquire(services.sessions, NAME, "host-b:2:bb", TTL_S, T0 + timedelta(seconds=1))
    assert current_holder(services.sessions, NAME, T0 + timedelta(seconds=1)) == "host-a:1:aa"


def test_the_holder_renews_and_keeps_it_past_the_first_ttl(services: Services) -> None:
    assert try_acquire(services.sessions, NAME, "host-a:1:aa", TTL_S, T0)
    assert try_acquire(services.sessions, NAME, "host-a:1:aa", TTL_S, T0 + timedelta(seconds=10))
    assert try_acquire(services.sessions, NAME, "host-a:1:aa", TTL_S, T0 + timedelta(seconds=20))
    # 35 s after the first acquisition, but only 15 s after the last renewal: still held.
    assert not try_acquire(services.sessions, NAME, "host-b:2:bb", TTL_S, T0 + timedelta(seconds=35))


def test_an_expired_lease_goes_to_the_next_holder(services: Services) -> None:
    assert try_acquire(services.sessions, NAME, "host-a:1:aa", TTL_S, T0)
    later = T0 + timedelta(seconds=TTL_S + 1)
    assert current_holder(services.sessions, NAME, later) is None
    assert try_acquire(services.sessions, NAME, "host-b:2:bb", TTL_S, later)
    assert not try_acquire(services.sessions, NAME, "host-a:1:aa", TTL_S, later + timedelta(seconds=1)), "the old holder lost it"


def test_a_released_lease_is_free_at_once_and_only_its_holder_can_release_it(services: Services) -> None:
    assert try_acquire(services.sessions, NAME, "host-a:1:aa", TTL_S, T0)
    assert not release(services.sessions, NAME, "host-b:2:bb")
    assert current_holder(services.sessions, NAME, T0) == "host-a:1:aa"
    assert release(services.sessions, NAME, "host-a:1:aa")
    assert try_acquire(services.sessions, NAME, "host-b:2:bb", TTL_S, T0 + timedelta(seconds=1))


def test_leases_of_different_names_are_independent(services: Services) -> None:
    assert try_acquire(services.sessions, "jobs-one", "host-a:1:aa", TTL_S, T0)
    assert try_acquire(services.sessions, "jobs-two", "host-b:2:bb", TTL_S, T0)


def _race(services_per_holder: list[Services], now: datetime) -> list[str]:
    """Every holder tries at the same moment, each on its own connection; who got it?"""
    holders = [f"host-{i}:{i}:race" for i in range(len(services_per_holder))]
    barrier = threading.Barrier(len(holders))
    winners: list[str] = []
    errors: list[BaseException] = []

    def attempt(services: Services, holder: str) -> None:
        try:
            barrier.wait(timeout=30)
            if try_acquire(services.sessions, NAME, holder, TTL_S, now):
                winners.append(holder)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=attempt, args=pair) for pair in zip(services_per_holder, holders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return winners


def test_holders_racing_for_a_new_lease_get_exactly_one_winner(make_services) -> None:
    processes = [make_services() for _ in range(6)]
    for round_number in range(5):
        with processes[0].sessions.begin() as session:
            session.execute(delete(Lease.__table__))  # nobody has ever held it
        assert len(_race(processes, T0 + timedelta(hours=round_number))) == 1


def test_holders_racing_for_an_expired_lease_get_exactly_one_winner(make_services) -> None:
    processes = [make_services() for _ in range(6)]
    assert try_acquire(processes[0].sessions, NAME, "host-old:0:gone", TTL_S, T0)
    moment = T0
    for _ in range(5):
        moment += timedelta(seconds=TTL_S + 1)  # whoever holds it has let it expire
        winners = _race(processes, moment)
        assert len(winners) == 1
        assert current_holder(processes[0].sessions, NAME, moment) == winners[0]


def test_holder_ids_name_the_host_and_process_and_differ_per_start() -> None:
    first, second = make_holder_id(), make_holder_id()
    assert first != second
    host, pid, token = first.rsplit(":", 2)
    assert host and pid.isdigit() and len(token) == 8 and len(first) <= 128
