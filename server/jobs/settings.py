"""Settings of the scheduled jobs: one typed model, snake_case, times in their units.

{
  "lease_ttl_s": 30,                      # the lease is renewed every ttl/3
  "deadline_sweep_every_s": 60,
  "overdue_late_window_s": 259200,        # cases known late still alert if overdue within 3 days
  "silent_check_every_s": 60,
  "silent_after_s": 900,                  # a collector not heard from for 15 minutes is silent
  "rollups_every_s": 900,                 # stored figures of past months and weeks kept current
  "reports_every_s": 3600,                # the monthly national report made and re-checked
  "report_months": 13,                    # how many ended months are re-checked for late events
  "audit_at": "03:15",
  "audit_time_zone": "Europe/Stockholm"
}
"""

from __future__ import annotations

from datetime import time

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from vardkoll.protocol.local_time_fields import TimeZoneName

LEASE_NAME = "vardkoll-jobs"


class JobSettings(BaseSettings):
    """Also from the environment, `VARDKOLL_JOBS_<FIELD>` (e.g. VARDKOLL_JOBS_ALERT_DELIVERY_EVERY_S=2)."""

    model_config = SettingsConfigDict(env_prefix="VARDKOLL_JOBS_", extra="forbid", frozen=True)

    lease_name: str = Field(default=LEASE_NAME, min_length=1, max_length=64)
    lease_ttl_s: float = Field(default=30.0, gt=0)
    deadline_sweep_every_s: float = Field(default=60.0, gt=0)
    overdue_late_window_s: float = Field(default=3 * 24 * 3600.0, ge=0)
    silent_check_every_s: float = Field(default=60.0, gt=0)
    silent_after_s: float = Field(default=15 * 60.0, gt=0)
    rollups_every_s: float = Field(default=15 * 60.0, gt=0)
    reports_every_s: float = Field(default=3600.0, gt=0)
    report_months: int = Field(default=13, ge=1, le=120)
    audit_at: time = time(3, 15)
    audit_time_zone: TimeZoneName = "Europe/Stockholm"
    retention_at: time = time(3, 45)  # after the self-audit, in the same time zone
    alert_checks_every_s: float = Field(default=60.0, gt=0)  # at-risk cases, telephone, outboxes, dead letters
    alert_delivery_every_s: float = Field(default=10.0, gt=0)  # hand alerts out, queue digests, send

    @property
    def lease_renew_every_s(self) -> float:
        return self.lease_ttl_s / 3
