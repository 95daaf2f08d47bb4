"""`vardkoll collector doctor`: can this device run? Broker and credentials, clock, sources, outbox, disk,
secret files — checked once, reported in plain Swedish for the installer, exit code 1 on any failure.

It changes nothing on the device (the outbox is opened read-only; nothing is created) and connects to
the broker under another client id than the running collector's, so it is safe beside a running agent.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from ..config import CollectorConfig, ConfigError, load_config
from . import checks
from .clock import ntp_state
from .findings import Finding, error, ok, render


@dataclass
class DoctorReport:
    findings: list[Finding]
    text: str

    @property
    def exit_code(self) -> int:
        return 1 if any(f.failed for f in self.findings) else 0


def run_doctor(
    config_path: Path | str,
    server_url: str | None = None,
    timeout_s: float = 10.0,
    *,
    now: Callable[[], float] = time.time,
    ntp: Callable[[], tuple[bool | None, str]] = ntp_state,
    http_transport: Any = None,
) -> DoctorReport:
    path = Path(config_path)
    try:
        config = load_config(path, check_call_links=False)  # reported below, in Swedish, with the sources
    except ConfigError as exc:
        findings = [error("Konfiguration", str(exc), "Rätta filen (se deploy/collector/collector.example.toml) och kör kommandot igen.")]
        return DoctorReport(findings, render(findings, f"vardkoll collector doctor — {path}"))
    return DoctorReport(*_run(config, path, server_url, timeout_s, now, ntp, http_transport))


def _run(config: CollectorConfig, path: Path, server_url: str | None, timeout_s: float, now, ntp, transport) -> tuple[list[Finding], str]:
    findings = [ok("Konfiguration", f"{path} går att läsa (insamlare {config.device}, vårdenhet {config.unit})")]
    config, remote = checks.effective_config(config)
    findings += remote
    findings += checks.secret_files(config)
    findings += checks.broker(config, timeout_s)
    source_findings, clocks = checks.sources(config, timeout_s, transport, now)
    if server_url:
        comparison = checks.server_clock(server_url, timeout_s, transport, now)
        if comparison is None:
            findings.append(error("Server", f"{server_url} svarar inte", "Kontrollera adressen och nätet."))
        else:
            clocks.append(comparison)
    findings += checks.clock_state(clocks, now, ntp)
    findings += source_findings
    findings += checks.outbox(config, now)
    heading = f"vardkoll collector doctor — insamlare {config.device} på vårdenhet {config.unit} ({path})"
    return findings, render(findings, heading)


__all__ = ["DoctorReport", "Finding", "run_doctor"]
