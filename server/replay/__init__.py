"""`vardkoll replay`: re-compute every figure from an archive of events (SPEC 4).

`engine` reads the archive and applies it; `blocks` splits a big stream into blocks parsed in parallel;
`shards` runs worker processes that each own some units; `unit_settings` reads the `--units` file.
"""

from .engine import ReplayPeriodError, open_events, replay_path, replay_stream
from .unit_settings import UnitSettingsError, load_unit_settings

__all__ = ["ReplayPeriodError", "UnitSettingsError", "load_unit_settings", "open_events", "replay_path", "replay_stream"]
