"""The dashboard: server-rendered pages in Swedish (Klinikvy, Regionvy, Installationsvy) and their login.

Wire it with `app.include_router(web_router)`; see docs/dashboard.md.
"""

from .routes import STATIC_DIR, web_router

__all__ = ["STATIC_DIR", "web_router"]
