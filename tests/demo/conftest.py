from web.conftest import chromium  # noqa: F401 - Debian's Chromium, as the dashboard tests drive it
