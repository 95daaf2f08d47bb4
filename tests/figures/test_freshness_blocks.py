"""A unit's data block is built once per state of its activity and devices, and rebuilt when either moves."""

from __future__ import annotations

from datetime import datetime, timezone
from types import SimpleNamespace

import orjson
import pytest

from vardkoll.server.figures.freshness import FreshnessBlocks

RECEIVED = datetime(2026, 5, 6, 7, 0, 5, tzinfo=timezone.utc)
LAST_EVENT_US = 1_778_050_800_000_000  # 2026-05-06T07:00:00Z


def activity(last_event_us: int | None = LAST_EVENT_US, received: datetime = RECEIVED) -> SimpleNamespace:
    return SimpleNamespace(last_event_at_us=last_event_us, last_received_at=received)


def device(name: str, status: str) -> SimpleNamespace:
    return SimpleNamespace(device=name, status=status)


def test_the_block_says_what_the_rows_say():
    blocks = FreshnessBlocks()
    found = blocks.of(
        ["A", "B"],
        {"A": activity()},
        {"A": [device("pi-b", "silent"), device("pi-a", "offline"), device("pi-c", "online"), device("pi-0", "silent")]},
    )
    assert found["A"] == {
        "no_data": False,
        "last_event_at": "2026-05-06T07:00:00+00:00",
        "last_received_at": "2026-05-06T07:00:05+00:00",
        "devices": 4,
        "devices_offline": ["pi-a"],
        "devices_silent": ["pi-0", "pi-b"],
    }
    assert found["B"] == {"no_data": True, "last_event_at": None, "last_received_at": None, "devices": 0, "devices_offline": [], "devices_silent": []}
    assert orjson.loads(orjson.dumps(found["A"])) == found["A"]


def test_an_unchanged_unit_gets_the_same_block_and_cannot_change_it():
    blocks = FreshnessBlocks()
    first = blocks.of(["A"], {"A": activity()}, {"A": [device("pi-a", "online")]})["A"]
    again = blocks.of(["A"], {"A": activity()}, {"A": [device("pi-a", "online")]})["A"]
    assert again is first
    with pytest.raises(TypeError, match="read-only"):
        again["devices"] = 2
    with pytest.raises(TypeError, match="read-only"):
        again["devices_silent"].append("pi-a")


@pytest.mark.parametrize(
    "moved",
    [
        {"activity": activity(LAST_EVENT_US + 1_000_000)},
        {"activity": activity(received=datetime(2026, 5, 6, 7, 1, tzinfo=timezone.utc))},
        {"devices": [device("pi-a", "silent")]},  # the silent-collector job marks it: no new event, no new version
        {"devices": [device("pi-a", "online"), device("pi-b", "online")]},
        {"devices": []},
    ],
    ids=["new event", "new receipt", "device silent", "device added", "device retired"],
)
def test_a_block_is_built_anew_when_what_it_shows_moved(moved):
    blocks = FreshnessBlocks()
    before = blocks.of(["A"], {"A": activity()}, {"A": [device("pi-a", "online")]})["A"]
    after = blocks.of(["A"], {"A": moved.get("activity", activity())}, {"A": moved.get("devices", [device("pi-a", "online")])})["A"]
    assert after is not before and after != before


def test_a_unit_without_activity_after_one_with_is_no_data_again():
    blocks = FreshnessBlocks()
    assert blocks.of(["A"], {"A": activity()}, {})["A"]["no_data"] is False
    assert blocks.of(["A"], {}, {})["A"]["no_data"] is True


def test_the_kept_blocks_are_bounded():
    blocks = FreshnessBlocks(max_units=3)
    for n in range(10):
        blocks.of([f"U{n}"], {}, {})
    assert len(blocks._kept) <= 4
