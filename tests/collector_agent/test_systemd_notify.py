"""sd_notify without a library: READY, WATCHDOG at half the interval, STOPPING; a no-op outside systemd."""

from __future__ import annotations

import os
import socket

from vardkoll.collector.systemd_notify import ServiceNotifier


def _listen(address: str) -> socket.socket:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(address)
    listener.settimeout(1)
    return listener


def test_ready_and_watchdog_pings_reach_the_socket_at_most_every_half_interval(tmp_path):
    listener = _listen(str(tmp_path / "notify"))
    now = [100.0]
    notifier = ServiceNotifier({"NOTIFY_SOCKET": str(tmp_path / "notify"), "WATCHDOG_USEC": "4000000"}, clock=lambda: now[0])
    notifier.ready()
    assert listener.recv(100) == b"READY=1"
    notifier.ping()
    notifier.ping()  # the same moment: not sent again
    now[0] += 1.9
    notifier.ping()
    now[0] += 0.1  # 2 s = half of WATCHDOG_USEC since the first ping
    notifier.ping()
    notifier.stopping()
    assert [listener.recv(100) for _ in range(3)] == [b"WATCHDOG=1", b"WATCHDOG=1", b"STOPPING=1"]


def test_an_abstract_socket_address_starts_with_a_nul_byte():
    name = f"vardkoll-test-{os.getpid()}"
    listener = _listen("\0" + name)
    ServiceNotifier({"NOTIFY_SOCKET": "@" + name}).ready("running")
    assert listener.recv(100) == b"READY=1\nSTATUS=running"


def test_without_systemd_nothing_is_sent_and_a_watchdog_for_another_pid_is_not_ours():
    assert ServiceNotifier({}).notify("READY=1") is False
    assert ServiceNotifier({"NOTIFY_SOCKET": "/nonexistent", "WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).watchdog_s is None


def test_a_socket_that_is_gone_is_reported_once_and_never_raises(tmp_path, caplog):
    notifier = ServiceNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone"), "WATCHDOG_USEC": "1000000"})
    notifier.ready()
    notifier.ping()
    assert [r.message for r in caplog.records].count("could not notify systemd (No such file or directory); watchdog pings stop") == 1
