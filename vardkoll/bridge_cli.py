"""`vardkoll bridge ...`: the command line of the firmware bridge.

    vardkoll bridge run --config bridge.toml --collector-config collector.toml
    vardkoll bridge simulate --port /tmp/vk-disp --device-id disp-entre-1 --unit SE2321000016-15SF

`run` builds a `BridgeService` (`firmware_bridge/service.py`: the bridge feeding the collector's durable
outbox and, unless `--no-publish`, the collector agent sending it) and runs it until SIGTERM or SIGINT.
`simulate` puts a simulated device on a pty, for trying `run` without hardware.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

bridge_app = typer.Typer(
    no_args_is_help=True, add_completion=False, help="The serial bridge for ticket dispensers and button panels (docs/firmware-protocol.md)."
)


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")


@bridge_app.command()
def run(
    config: Annotated[Path, typer.Option("--config", help="the bridge's TOML (or JSON) config: ports and devices")],
    collector_config: Annotated[Path, typer.Option("--collector-config", help="the collector's TOML config: outbox, secret, MQTT")],
    publish: Annotated[
        bool,
        typer.Option(
            "--publish/--no-publish",
            help="also run the collector (publisher and connectors) in this process; --no-publish when a separate collector sends the same outbox",
        ),
    ] = True,
    log_level: Annotated[str, typer.Option("--log-level")] = "INFO",
) -> None:
    """Read the configured serial ports into the collector's outbox until SIGTERM or SIGINT."""
    from vardkoll.collector.pseudonyms import SecretFileError
    from vardkoll.firmware_bridge.service import BridgeService, BridgeSetupError

    _setup_logging(log_level)
    try:
        service = BridgeService.from_files(config, collector_config, publish=publish)
    except Exception as exc:  # noqa: BLE001 - config and secret-file problems: say what, exit 2
        if isinstance(exc, (BridgeSetupError, SecretFileError, OSError)):
            typer.echo(f"vardkoll bridge: {exc}", err=True)
            raise typer.Exit(2) from None
        raise
    if not service.bridge.config.ports:
        typer.echo("vardkoll bridge: no ports configured (`ports = [...]` in the bridge config)", err=True)
        service.stop()
        raise typer.Exit(2)
    service.run()


@bridge_app.command()
def simulate(
    port: Annotated[Path, typer.Option("--port", help="path of the symlink to create for the pty (give it to the bridge as a port)")],
    device_id: Annotated[str, typer.Option("--device-id")] = "disp-entre-1",
    unit: Annotated[str, typer.Option("--unit")] = "SE2321000016-15SF",
    kind: Annotated[str, typer.Option("--kind", help="ticket_dispenser, button_panel or queue_panel")] = "ticket_dispenser",
    input_id: Annotated[int, typer.Option("--input", help="the input pressed")] = 1,
    every_s: Annotated[float, typer.Option("--every", help="seconds between presses")] = 2.0,
    count: Annotated[Optional[int], typer.Option("--count", help="stop after this many presses (default: until Ctrl-C)")] = None,
    ref: Annotated[int, typer.Option("--ref", help="ticket number a panel press carries (0: none)")] = 0,
) -> None:
    """A simulated device on a pty, pressing a button now and then (a demo for `bridge run`)."""
    from vardkoll.firmware_bridge.config import KIND_CODES
    from vardkoll.firmware_bridge.simulator import SimulatedDevice

    if kind not in KIND_CODES:
        typer.echo(f"vardkoll bridge: --kind must be one of {', '.join(KIND_CODES)}", err=True)
        raise typer.Exit(2)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
    device = SimulatedDevice(device_id, unit, kind, port)
    device.plug()
    typer.echo(f"{device_id}: plugged in at {port}; point the bridge's `ports` at it")
    pressed = 0
    reported_acks = 0
    next_press = time.monotonic()
    try:
        while not stop.wait(0.1):
            if count is not None and pressed >= count:
                if not device.unacked:
                    break
            elif time.monotonic() >= next_press:
                local_seq = device.press(input_id, ref)
                pressed += 1
                next_press = time.monotonic() + every_s
                typer.echo(f"{device_id}: press {local_seq} (input {input_id})")
            if len(device.acked) > reported_acks:
                typer.echo(f"{device_id}: acknowledged {device.acked[reported_acks:]}")
                reported_acks = len(device.acked)
    finally:
        device.unplug()
    typer.echo(f"{device_id}: {pressed} press(es), {len(device.acked)} acknowledged, {len(device.unacked)} kept")


if __name__ == "__main__":
    bridge_app()
