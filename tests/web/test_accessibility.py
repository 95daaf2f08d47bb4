"""WCAG AA contrast and keyboard use, measured in real headless Chromium on every page with data.

Contrast: every element that shows text (HTML and the charts' SVG text) is checked with the computed
colours the browser actually paints: the text colour (or SVG fill) against the first opaque background
behind it, composited; 4.5:1 for normal text, 3:1 for large text (24 px, or 18.66 px bold), as WCAG 2.1
1.4.3 asks. Keyboard: Tab reaches every link, button and field of the page in turn, each shows a visible
focus indicator (2.4.7), and the first stop is the skip link.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import quote

import pytest

from .test_browser import DESKTOP, PHONE, post_events
from .world import ADMIN_TOKEN, STOCKHOLM, UPPSALA, VC01, VC02, day_of_events

PAGES = (("Klinikvy", f"/enhet/{VC01}"), ("Regionvy", f"/region/{quote(UPPSALA)}"), ("Installationsvy", f"/installation/{VC01}"), ("Hjälp", "/hjalp/klinikvy"))

# Runs in the page: {checked: how many texts were measured, failures: [{what, text, ratio, needed}]}.
CONTRAST_JS = """
() => {
  const parse = (c) => { const m = c.match(/rgba?\\(([^)]+)\\)/); if (!m) return null;
    const p = m[1].split(/[ ,\\/]+/).filter(Boolean).map(Number); return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1]; };
  const over = (top, bottom) => { const a = top[3]; return [0, 1, 2].map(i => top[i] * a + bottom[i] * (1 - a)).concat([1]); };
  const lum = (c) => { const f = (v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c[0]) + 0.7152 * f(c[1]) + 0.0722 * f(c[2]); };
  const background = (el) => {
    const layers = [];
    for (let e = el; e; e = e.parentElement) {
      const style = getComputedStyle(e);
      if (style.backgroundImage && style.backgroundImage !== 'none') return null;  // an image: not judged here
      const c = parse(e instanceof SVGElement && e.tagName !== 'svg' ? 'rgba(0,0,0,0)' : style.backgroundColor);
      if (c && c[3] > 0) { layers.push(c); if (c[3] >= 1) break; }
    }
    let result = [255, 255, 255, 1];
    for (let i = layers.length - 1; i >= 0; i--) result = over(layers[i], result);
    return result;
  };
  const failures = [];
  const seen = new Set();
  let checked = 0, svg = 0;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const el = node.parentElement;
    if (!el || seen.has(el) || !node.textContent.trim()) continue;
    seen.add(el);
    const rect = el.getBoundingClientRect();
    const style = getComputedStyle(el);
    if (rect.width === 0 || rect.height === 0 || style.visibility === 'hidden' || style.display === 'none') continue;
    if (el.closest('.visually-hidden, .sr-only, [hidden], title, desc')) continue;  // not painted
    const isSvg = el instanceof SVGElement;
    let fg = parse(isSvg ? style.fill : style.color);
    if (!fg) continue;
    const bg = background(el);
    if (!bg) continue;
    fg = over(fg, bg);
    checked += 1;
    if (isSvg) svg += 1;
    const [a, b] = [lum(fg), lum(bg)];
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight, 10) >= 700;
    const needed = (size >= 24 || (bold && size >= 18.66)) ? 3 : 4.5;
    if (ratio + 1e-9 < needed) failures.push({what: el.tagName.toLowerCase() + (el.getAttribute('class') ? '.' + el.getAttribute('class').replace(/ /g, '.') : ''),
      text: node.textContent.trim().slice(0, 40), ratio: Math.round(ratio * 100) / 100, needed});
  }
  return {checked, svg, failures};
}
"""

FOCUSABLE_JS = """
() => [...document.querySelectorAll('a[href], button, input:not([type=hidden]), select, textarea, summary, [tabindex]:not([tabindex="-1"])')]
  .filter(e => !e.disabled && e.getClientRects().length && getComputedStyle(e).visibility !== 'hidden').length
"""

ACTIVE_JS = """
() => { const e = document.activeElement; if (!e || e === document.body) return null;
  if (!e.dataset.a11yId) e.dataset.a11yId = String(Math.random());
  const s = getComputedStyle(e);
  const visible = (s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) > 0) || s.boxShadow !== 'none';
  return {id: e.dataset.a11yId, tag: e.tagName.toLowerCase(), text: (e.innerText || e.value || '').trim().slice(0, 30),
          href: e.getAttribute('href'), visible}; }
"""


@pytest.fixture
def page_with_data(chromium, live_server):
    base, _ = live_server
    now = datetime.now(STOCKHOLM)
    today = now.date()
    events = []
    for offset in range(1, 8):
        events += day_of_events(VC01, today - timedelta(days=offset), seed=offset)
        events += day_of_events(VC02, today - timedelta(days=offset), seed=offset + 1, calls=15)
    events += day_of_events(VC01, today, latest=now, seed=9, calls=60)
    post_events(base, events)

    def open_page(viewport: dict):
        context = chromium.new_context(viewport=viewport, locale="sv-SE", timezone_id="Europe/Stockholm")
        page = context.new_page()
        page.goto(f"{base}/logga-in")
        return context, page

    return base, open_page


def sign_in(page) -> None:
    page.fill("#token", ADMIN_TOKEN)
    page.click("button[type=submit]")
    page.wait_for_load_state("domcontentloaded")


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_every_text_on_every_page_meets_wcag_aa_contrast(page_with_data, viewport):
    base, open_page = page_with_data
    context, page = open_page(viewport)
    measured = {"Logga in": page.evaluate(CONTRAST_JS)}
    sign_in(page)
    for name, path in PAGES:
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        for summary in page.locator("details summary").all():  # the tables behind the charts too
            summary.click()
        measured[name] = page.evaluate(CONTRAST_JS)
    context.close()
    assert {name: m["failures"] for name, m in measured.items() if m["failures"]} == {}
    # Not vacuous: the pages' texts were measured, the charts' SVG labels among them.
    counts = {n: (m["checked"], m["svg"]) for n, m in measured.items()}
    assert measured["Klinikvy"]["checked"] > 200 and measured["Regionvy"]["checked"] > 50, counts
    assert measured["Klinikvy"]["svg"] > 10, counts


def test_the_contrast_check_finds_a_grey_on_white_text(page_with_data):
    """The check itself: #999 on white is 2.85:1, under 4.5:1."""
    _, open_page = page_with_data
    context, page = open_page(DESKTOP)
    page.evaluate(
        "() => { const p = document.createElement('p'); p.textContent = 'svag text'; p.style.color = '#999'; p.style.background = '#fff'; document.body.appendChild(p); }"
    )
    failures = page.evaluate(CONTRAST_JS)["failures"]
    context.close()
    assert [(f["text"], f["ratio"]) for f in failures] == [("svag text", 2.85)]


@pytest.mark.parametrize("name, path", PAGES, ids=[name for name, _ in PAGES])
def test_tab_reaches_every_control_with_a_visible_focus_and_starts_at_the_skip_link(page_with_data, name, path):
    base, open_page = page_with_data
    context, page = open_page(DESKTOP)
    sign_in(page)
    page.goto(base + path)
    page.wait_for_load_state("networkidle")
    expected = page.evaluate(FOCUSABLE_JS)
    stops = []
    for _ in range(4 * expected + 4):  # a date field takes a Tab per part (day, month, year, calendar)
        page.keyboard.press("Tab")
        active = page.evaluate(ACTIVE_JS)
        if active is None or (stops and active["id"] == stops[0]["id"]):
            break  # left the page or came round again
        stops.append(active)
    context.close()
    assert stops and stops[0]["href"] == "#innehall", f"{name}: the first Tab goes to {stops[:1]}, not the skip link"
    reached = {stop["id"] for stop in stops}
    assert len(reached) == expected, f"{name}: Tab reached {len(reached)} of {expected} controls"
    assert [stop for stop in stops if not stop["visible"]] == [], f"{name}: controls without a visible focus indicator"
