"""Hjälp: a help page per view, in Swedish, linked from the view ("Hjälp"). The definitions on them come
from `vardkoll.server.metrics.definitions`, the source docs/metrics.md section 8 is generated from.

Help pages hold no data, so they need no sign-in (a link from the login page or a printout works too).
"""

from __future__ import annotations

import re

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from markupsafe import Markup, escape

from vardkoll.server.metrics.definitions import DEFINITIONS, SILENT_DEVICE, TERMS, target_text

from .pages import PageError, error_page, render
from .session import signed_in

# The view each help page explains: its address under /hjalp/ and its title.
HELP_PAGES = {"klinikvy": "Klinikvy", "regionvy": "Regionvy", "installationsvy": "Installationsvy"}

help_router = APIRouter(include_in_schema=False)


def code_spans(text: str) -> Markup:
    """The definitions' Markdown `code` as <code>, everything else escaped."""
    return Markup(re.sub(r"`([^`]+)`", r"<code>\1</code>", str(escape(text))))


@help_router.get("/hjalp", response_class=HTMLResponse)
@help_router.get("/hjalp/{view}", response_class=HTMLResponse)
def help_page(request: Request, view: str | None = None) -> HTMLResponse:
    principal = signed_in(request)
    if view is not None and view not in HELP_PAGES:
        return error_page(
            request,
            principal,
            PageError(404, "Sidan finns inte", f"Det finns ingen hjälpsida ”{view[:40]}”. Hjälp finns för: {', '.join(HELP_PAGES.values())}."),
        )
    return render(
        request,
        "hjalp.html",
        principal=principal,
        view=view,
        pages=HELP_PAGES,
        definitions=list(DEFINITIONS.values()),
        terms=TERMS,
        silent_device=SILENT_DEVICE,
        target_text=target_text,
        code_spans=code_spans,
    )
