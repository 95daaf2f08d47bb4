"""How much memory each of the collector's SQLite files (outbox, lookup map, period book) may cache.

SQLite's default page cache is 2 000 KiB per connection, and a drain reads the whole outbox through it:
after 20 000 events the collector was 1.5 MB bigger than with this cache, on a device whose whole budget is
40 MB (SPEC 6). The files sit in the operating system's page cache anyway, so a small SQLite cache costs a
read() per page missed and nothing measurable in the drain rate (bench/collector.py, docs/benchmarks.md
"Collector").
"""

from __future__ import annotations

import sqlite3

PAGE_CACHE_KIB = 512  # per connection; SQLite's default is 2 000


def limit_page_cache(connection: sqlite3.Connection) -> None:
    connection.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")  # negative: KiB, whatever the page size
