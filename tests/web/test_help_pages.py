"""Hjälp: every view links to its help page, the help pages explain the figures with the definitions of
`vardkoll.server.metrics.definitions` (the source docs/metrics.md section 8 is generated from), and no
link on a page is dead."""

from __future__ import annotations

import re
from html import unescape
from urllib.parse import quote, urlsplit

import pytest

from vardkoll.server.metrics import METRICS
from vardkoll.server.metrics.definitions import DEFINITIONS, SILENT_DEVICE, TERMS

from .test_browser import signed_in_page
from .test_login_and_scope import login
from .world import ADMIN_TOKEN, UPPSALA, VC01

VIEWS = {  # view page -> the help page it must link to
    f"/enhet/{VC01}": "/hjalp/klinikvy",
    f"/region/{quote(UPPSALA)}": "/hjalp/regionvy",
    f"/installation/{VC01}": "/hjalp/installationsvy",
}
HREF = re.compile(r'href="(?P<href>[^"]+)"')


def plain(text: str) -> str:
    """A definition's text as the page shows it (Markdown code marks dropped)."""
    return text.replace("`", "")


@pytest.mark.parametrize("view, help_path", list(VIEWS.items()))
def test_each_views_help_opens_from_the_view_and_explains_every_figure(chromium, live_server, view, help_path):
    base, _ = live_server
    context, page = signed_in_page(chromium, base, ADMIN_TOKEN)
    page.goto(base + view)
    page.get_by_role("link", name="Hjälp", exact=True).click()
    page.wait_for_load_state("domcontentloaded")
    assert urlsplit(page.url).path == help_path
    assert page.locator("h1").inner_text().startswith("Hjälp: ")
    for metric in METRICS:
        definition = DEFINITIONS[metric]
        article = page.locator(f"#matt-{metric}")
        assert article.locator("h3").inner_text() == definition.name
        assert article.locator("[data-field=national]").inner_text() == definition.national
        assert definition.under_target in article.locator("[data-field=under-target]").inner_text()
        assert f"version {definition.version}" in article.inner_text()
    for term in TERMS:
        assert page.locator(f"#{term.key} dt").inner_text() == term.name
        assert page.locator(f"#{term.key} dd").inner_text() == term.meaning
    silent = page.locator("#tyst-insamlare").inner_text()
    assert all(plain(step) in silent for step in SILENT_DEVICE)
    context.close()


def test_no_link_on_a_view_or_a_help_page_is_dead(web):
    client, _ = web
    login(client, ADMIN_TOKEN)
    pages = list(VIEWS) + sorted(set(VIEWS.values())) + ["/hjalp"]
    checked: set[str] = set()
    for path in pages:
        html = client.get(path).text
        if path in VIEWS:
            help_links = re.findall(r'<a href="(/hjalp[^"]*)" data-help>Hjälp</a>', html)
            assert help_links == [VIEWS[path]], (path, help_links)
        for href in (unescape(m["href"]) for m in HREF.finditer(html)):
            if not href.startswith("/") or href.startswith("//") or href in checked or href.startswith("/logga-ut"):
                continue
            checked.add(href)
            target, _, anchor = href.partition("#")
            response = client.get(target)
            assert response.status_code == 200, f"{path} links to {href}: {response.status_code}"
            assert not anchor or f'id="{anchor}"' in response.text, f"{path} links to {href}: no element with that id"
    assert set(VIEWS.values()) <= checked


def test_an_unknown_help_page_says_which_exist(web):
    client, _ = web
    response = client.get("/hjalp/larm")
    assert response.status_code == 404
    assert "Klinikvy, Regionvy, Installationsvy" in response.text
