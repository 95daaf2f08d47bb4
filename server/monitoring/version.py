"""The installed version, as `vardkoll --version`, the health answer and the pages' footer say it."""

from __future__ import annotations

from functools import cache


@cache
def version() -> str:
    from importlib.metadata import PackageNotFoundError
    from importlib.metadata import version as installed

    try:
        return installed("vardkoll")
    except PackageNotFoundError:  # run from a source tree without installing
        from vardkoll import __version__

        return __version__
