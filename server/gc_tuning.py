"""The cyclic garbage collector tuned for a long-running server process.

A full collection walks every tracked object. A server process holds some 200 000 of them (modules,
the ORM's mappers, Pydantic's models, the live hub), and with CPython's defaults (the youngest
generation collected every 700 allocations, promoting whatever a request still holds) every third
Regionvy request of a 230-unit region paid a 90–110 ms full collection (docs/benchmarks.md, "Dashboard
pages"). So, once started: what exists is frozen (never walked again; it lives as long as the process)
and the youngest generation is collected every 10 000 allocations, so that a request's short-lived
objects die young instead of filling the oldest generation. Both are undone when serving stops (a
test process starts and stops many apps).
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

YOUNGEST_THRESHOLD = 10_000


@contextmanager
def tuned_for_serving() -> Iterator[None]:
    before = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNGEST_THRESHOLD, *before[1:])
    try:
        yield
    finally:
        gc.set_threshold(*before)
        gc.unfreeze()
