"""The local-time rules of `local_time` as pydantic field types, for the server's models and settings.

Apart from `local_time` so that the collector and the bridge, which check the same rules in msgspec
configs, never import pydantic: it cost every collector 6 MB resident of SPEC 6's 40 MB.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field

from .local_time import Span, Weekday, check_opening_spans, check_time_zone

TimeZoneName = Annotated[str, AfterValidator(check_time_zone)]
OpeningHours = Annotated[
    dict[Weekday, list[Span]],
    AfterValidator(check_opening_spans),
    Field(description='local opening spans per weekday, e.g. {"mon": [["08:00", "12:00"], ["13:00", "17:00"]]}'),
]
