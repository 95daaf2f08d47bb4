"""Simulated devices on ptys, through the bridge, into an in-memory sink: every press becomes exactly
one event, across unplugs, resets and noise; refusals are counted with a reason."""

from __future__ import annotations

import time

import pytest

from support import wait_until

from vardkoll.firmware_bridge.framing import DecodeError, FrameDecoder, FrameError, encode_frame
from vardkoll.firmware_bridge.messages import EventMsg, MsgType, Reason
from vardkoll.firmware_bridge.simulator import StoredPress
from vardkoll.protocol import validate_event

from .conftest import OTHER_UNIT

pytest.importorskip("serial", reason="pyserial is not installed (the `bridge` extra)")


def assert_exactly_once(sink, n: int) -> None:
    events = sink.snapshot()
    ids = [event["id"] for event in events]
    assert len(ids) == n, f"{len(ids)} events for {n} presses"
    assert len(set(ids)) == n, "an event was handed to the sink twice"
    for event in events:
        validate_event(event)


def test_presses_become_exactly_one_event_each(make_device, make_bridge, link_dir):
    dispenser = make_device("disp-entre-1", "ticket_dispenser")
    bridge, sink = make_bridge([link_dir / "disp-entre-1"])
    assert dispenser.helloed.wait(5)
    for _ in range(50):
        dispenser.press(1)
    assert dispenser.wait_all_acked(10)
    assert_exactly_once(sink, 50)
    assert {event["type"] for event in sink.snapshot()} == {"care.contact"}
    assert {event["channel"] for event in sink.snapshot()} == {"visit"}
    assert bridge.stats["events.added"] == 50


def test_unplug_mid_stream_loses_nothing_and_doubles_nothing(make_device, make_bridge, link_dir):
    dispenser = make_device("disp-entre-1", "ticket_dispenser")
    bridge, sink = make_bridge([link_dir / "disp-entre-1"])
    assert dispenser.helloed.wait(5)
    for _ in range(30):
        dispenser.press(1)
    dispenser.unplug()  # some presses acknowledged, some in flight, some never sent
    for _ in range(10):
        dispenser.press(1)  # pressed while the cable is out: kept in the device's store
    dispenser.plug()
    for _ in range(10):
        dispenser.press(1)
    assert dispenser.wait_all_acked(10)
    assert_exactly_once(sink, 50)
    assert bridge.stats["port.lost"] >= 1
    assert bridge.stats["hello_accepted"] >= 2


def test_device_reset_resends_unacked_presses_without_doubles(make_device, make_bridge, link_dir):
    dispenser = make_device("disp-entre-1", "ticket_dispenser")
    bridge, sink = make_bridge([link_dir / "disp-entre-1"])
    assert dispenser.helloed.wait(5)
    sink.fail = True  # the outbox is unavailable: nothing may be acknowledged
    for _ in range(8):
        dispenser.press(1)
    assert wait_until(lambda: bridge.stats["events_refused.sink_unavailable"] >= 8, 5)
    assert dispenser.unacked == set(range(1, 9))
    dispenser.reset()  # reboot: RAM gone, store kept
    sink.fail = False
    assert dispenser.wait_all_acked(10)
    # An ACK lost on the line just before a reset: the device sends press 1 again after the reboot.
    dispenser.store[1] = StoredPress(EventMsg(1, 1, 1, int(time.time() * 1000), 1), dispenser.boot, 0)
    dispenser.reset()
    assert dispenser.wait_all_acked(10)
    assert_exactly_once(sink, 8)
    assert bridge.stats["events.duplicate"] >= 1


def test_noise_truncated_frames_and_bad_crcs_are_counted_and_survived(make_device, make_bridge, link_dir):
    dispenser = make_device("disp-entre-1", "ticket_dispenser")
    bridge, sink = make_bridge([link_dir / "disp-entre-1"])
    assert dispenser.helloed.wait(5)
    # A fixed time: with the clock's, about 1 run in 60 flipped the CRC byte into a start or escape byte,
    # which the decoder rightly reads as a truncated or badly escaped frame, not a CRC error.
    good = encode_frame(MsgType.EVENT, 9, EventMsg(999, 1, 1, 1_764_000_000_000, 0).encode())
    bad_crc = bytearray(good)
    bad_crc[-1] ^= 0xFF
    assert list(FrameDecoder().feed(bytes(bad_crc) + good[:1])) == [FrameError(DecodeError.CRC)]
    for index in range(20):
        dispenser.press(1)
        dispenser.inject(b"\x00\xffnoise\x13\x11")  # includes XON/XOFF bytes: the line is raw
        if index % 5 == 0:
            dispenser.inject(good[:7])  # cut short by the next frame's start byte
        if index % 5 == 1:
            dispenser.inject(bytes(bad_crc))
        if index % 5 == 2:
            dispenser.inject(b"\x7e\xff" + b"\x55" * 50)  # oversized length
    assert dispenser.wait_all_acked(10)
    assert_exactly_once(sink, 20)
    assert wait_until(lambda: bridge.stats["frame_error.crc"] >= 4, 5)
    stats = bridge.stats.snapshot()
    assert stats["garbage_bytes"] >= 20 * 9
    assert stats["frame_error.truncated"] >= 4
    assert stats["frame_error.oversized"] >= 4


def test_device_claiming_another_unit_is_refused_with_a_reason_and_counted(make_device, make_bridge, link_dir):
    impostor = make_device("disp-entre-1", "ticket_dispenser", unit=OTHER_UNIT)
    bridge, sink = make_bridge([link_dir / "disp-entre-1"])
    assert wait_until(lambda: Reason.WRONG_UNIT in impostor.refusals, 5)
    impostor.press(1)
    time.sleep(0.3)
    assert not impostor.helloed.is_set()
    assert sink.snapshot() == []
    assert bridge.stats["hello_refused.wrong_unit"] >= 1
    assert impostor.unacked == {1}, "a refused device keeps its presses"


def test_unknown_device_and_wrong_kind_are_refused(make_device, make_bridge, link_dir):
    stranger = make_device("disp-okand", "ticket_dispenser")
    wrong_kind = make_device("panel-1", "ticket_dispenser")
    bridge, _ = make_bridge([link_dir / "disp-okand", link_dir / "panel-1"])
    assert wait_until(lambda: Reason.UNKNOWN_DEVICE in stranger.refusals, 5)
    assert wait_until(lambda: Reason.WRONG_KIND in wrong_kind.refusals, 5)
    assert bridge.stats["hello_refused.unknown_device"] >= 1
    assert bridge.stats["hello_refused.wrong_kind"] >= 1


def test_event_before_hello_is_refused_until_the_device_says_hello(make_device, make_bridge, link_dir):
    dispenser = make_device("disp-entre-1", "ticket_dispenser")
    bridge, sink = make_bridge([link_dir / "disp-entre-1"])
    assert dispenser.helloed.wait(5)
    bridge.stop()  # a new bridge process knows nothing of the old session
    fresh, fresh_sink = make_bridge([link_dir / "disp-entre-1"])
    for _ in range(3):
        dispenser.press(1)
    assert dispenser.wait_all_acked(10)
    assert fresh.stats["events_refused.not_helloed"] >= 1
    assert_exactly_once(fresh_sink, 3)


def test_panel_and_dispenser_on_two_ports_link_assessment_to_contact(make_device, make_bridge, link_dir):
    dispenser = make_device("disp-entre-1", "ticket_dispenser")
    panel = make_device("panel-1", "button_panel")
    bridge, sink = make_bridge([link_dir / "disp-entre-1", link_dir / "panel-1"])
    assert dispenser.helloed.wait(5) and panel.helloed.wait(5)
    tickets = [dispenser.press(1) for _ in range(5)]
    for ticket in tickets:
        panel.press(2, ref=ticket)  # doctor, physical, for that ticket
    panel.press(1)  # no ticket entered: a case of its own
    assert dispenser.wait_all_acked(10) and panel.wait_all_acked(10)
    assert_exactly_once(sink, 11)
    contacts = {e["case"] for e in sink.snapshot() if e["type"] == "care.contact"}
    assessed = [e for e in sink.snapshot() if e["type"] == "care.assessed"]
    assert len(contacts) == 5
    assert sum(e["case"] in contacts for e in assessed) == 5
    assert {e["profession"] for e in assessed} == {"doctor", "nurse"}


def test_unmapped_input_is_refused_and_kept_on_the_device(make_device, make_bridge, link_dir):
    dispenser = make_device("disp-entre-1", "ticket_dispenser")
    bridge, sink = make_bridge([link_dir / "disp-entre-1"])
    assert dispenser.helloed.wait(5)
    dispenser.press(7)
    assert wait_until(lambda: bridge.stats["events_refused.unknown_input"] >= 1, 5)
    # The counter moves before the NACK crosses the line: wait for the device to hear it.
    assert wait_until(lambda: any(n.reason == Reason.UNKNOWN_INPUT for n in dispenser.nacks), 5)
    assert dispenser.unacked == {1}
    assert sink.snapshot() == []


def test_press_before_time_sync_is_dated_by_the_device_once_synced(make_device, make_bridge, link_dir):
    dispenser = make_device("disp-entre-1", "ticket_dispenser")
    time.sleep(0.3)
    dispenser.press(1)  # no bridge yet: not synced, dated by uptime; re-dated after the HELLO_ACK
    bridge, sink = make_bridge([link_dir / "disp-entre-1"])
    assert dispenser.wait_all_acked(10)
    assert_exactly_once(sink, 1)
    assert bridge.stats["events.receive_time_unsynced"] == 0


def test_unsynced_press_from_an_earlier_boot_gets_receive_time_by_default(make_device, make_bridge, link_dir):
    dispenser = make_device("disp-entre-1", "ticket_dispenser")
    dispenser.press(1)  # not synced, and the device reboots before it ever is
    dispenser.reset()
    bridge, sink = make_bridge([link_dir / "disp-entre-1"])
    assert dispenser.wait_all_acked(10)
    assert_exactly_once(sink, 1)
    assert bridge.stats["events.receive_time_unsynced"] == 1


def test_unsynced_press_is_held_back_under_policy_hold(make_device, make_bridge, link_dir):
    dispenser = make_device("disp-entre-1", "ticket_dispenser")
    dispenser.press(1)
    dispenser.reset()
    bridge, sink = make_bridge([link_dir / "disp-entre-1"], unsynced_events="hold")
    assert wait_until(lambda: bridge.stats["nack.time_not_synced"] >= 1, 5)
    assert dispenser.unacked == {1}
    assert sink.snapshot() == []


def test_bridge_waits_for_a_port_that_is_not_there_yet(link_dir, make_bridge, make_device):
    bridge, sink = make_bridge([link_dir / "disp-entre-1"])
    assert wait_until(lambda: bridge.stats["port.open_failed"] >= 2, 5)
    dispenser = make_device("disp-entre-1", "ticket_dispenser")
    dispenser.press(1)
    assert dispenser.wait_all_acked(10)
    assert_exactly_once(sink, 1)
