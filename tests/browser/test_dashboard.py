"""The telemetry dashboard in a real browser, against the demo project served for real.

A staff user watches the dashboard while another tab breaks pages: the counters,
the chart and the recent events change without a reload. Then the destination
starts failing and the circuit breaker's state changes on the page. Anonymous
visitors are sent to the login page, non-staff users are refused, and the data
endpoints want a session or the bearer token.
"""

from __future__ import annotations

import re
from pathlib import Path

from playwright.sync_api import BrowserContext, Page, expect

from .conftest import BREAKER_THRESHOLD, DemoServer

UPDATE = 20_000  # ms: a heartbeat (1 s in the demo) plus a poll (3 s), with room for a slow machine


def counter(page: Page, name: str) -> int:
    text = page.locator(f'[data-counter="{name}"] .value').inner_text()
    return int(text.replace(",", ""))


def break_pages(context: BrowserContext, server: DemoServer, paths: list[str]) -> None:
    """Open failing pages in another tab (each answers 500)."""
    tab = context.new_page()
    for path in paths:
        response = tab.goto(server.url(path))
        assert response is not None and response.status == 500, path
    tab.close()


def test_anonymous_and_non_staff_are_refused(
    context: BrowserContext, demo_server: DemoServer
) -> None:
    page = context.new_page()
    page.goto(demo_server.url("/telemetry/"))
    expect(page).to_have_url(re.compile(r"/accounts/login/\?next=/telemetry/$"))
    assert context.request.get(demo_server.url("/telemetry/status.json")).status == 401
    assert context.request.get(demo_server.url("/telemetry/metrics")).status == 401

    visitor = demo_server.login(context, "visitor")
    assert visitor.url.endswith("/telemetry/")
    response = visitor.goto(demo_server.url("/telemetry/"))
    assert response is not None and response.status == 403
    assert context.request.get(demo_server.url("/telemetry/status.json")).status == 403
    assert context.request.get(demo_server.url("/telemetry/metrics")).status == 403

    # the data endpoints also open with the configured bearer token (and only with it)
    api = context.request
    url = demo_server.url("/telemetry/metrics")
    wrong = api.get(url, headers={"Authorization": "Bearer not-the-token-at-all"})
    assert wrong.status == 403  # a logged-in non-staff session with a wrong token
    fresh = context.browser.new_context() if context.browser else None
    assert fresh is not None
    try:
        anonymous = fresh.request
        assert anonymous.get(url, headers={"Authorization": "Bearer wrong-token-xyz"}).status == 401
        good = anonymous.get(url, headers={"Authorization": f"Bearer {demo_server.token}"})
        assert good.status == 200
        assert "errwire_captured_total" in good.text()
        assert good.headers["content-type"].startswith("text/plain; version=0.0.4")
        status = anonymous.get(
            demo_server.url("/telemetry/status.json"),
            headers={"Authorization": f"Bearer {demo_server.token}"},
        )
        assert status.status == 200 and "runtimes" in status.json()
        # read-only
        post = anonymous.post(
            demo_server.url("/telemetry/status.json"),
            headers={"Authorization": f"Bearer {demo_server.token}"},
        )
        assert post.status in (403, 405)  # CSRF (403) or method not allowed (405): never served
    finally:
        fresh.close()


def test_dashboard_updates_live_and_shows_the_breaker(
    context: BrowserContext, demo_server: DemoServer, artifacts: Path
) -> None:
    receiver = demo_server.receiver
    receiver.ok()
    page = demo_server.login(context, "staff")
    expect(page).to_have_url(re.compile(r"/telemetry/$"))
    expect(page.locator("#runtimes tbody tr[data-pid]")).to_have_count(1, timeout=UPDATE)
    expect(page.locator("[data-breaker]")).to_have_attribute("data-breaker", "closed")
    page.evaluate("window.__notReloaded = true")
    captured = counter(page, "captured")
    chart_total = int(page.locator("#events-chart").get_attribute("data-total") or 0)

    # errors happen in another tab; this one updates by itself
    break_pages(context, demo_server, ["/fail/validation/", "/fail/database/", "/fail/timeout/"])
    page.wait_for_function(
        "n => Number(document.querySelector('[data-counter=captured] .value')"
        ".textContent.replace(/,/g, '')) >= n",
        arg=captured + 3,
        timeout=UPDATE,
    )
    page.wait_for_function(
        "n => Number(document.getElementById('events-chart').dataset.total) >= n",
        arg=chart_total + 3,
        timeout=UPDATE,
    )
    expect(page.locator("#recent tbody")).to_contain_text("ValueError", timeout=UPDATE)
    expect(page.locator("#recent tbody")).to_contain_text("quantity must be positive")
    expect(page.locator("#events-chart svg rect").first).to_be_visible()
    expect(page.locator("#components tbody")).to_contain_text("shop")
    page.wait_for_function(
        "() => Number(document.querySelector('[data-counter=delivered] .value')"
        ".textContent.replace(/,/g, '')) >= 3",
        timeout=UPDATE,
    )
    assert page.evaluate("window.__notReloaded") is True
    expect(page.locator("#state")).to_have_attribute("data-state", "ok")
    page.screenshot(path=str(artifacts / "dashboard-ok-1280x800.png"))

    # the destination starts failing: the breaker opens and the page says so
    receiver.status(500)
    break_pages(context, demo_server, ["/fail/validation/"] * (BREAKER_THRESHOLD + 1))
    expect(page.locator("[data-breaker]")).to_have_attribute("data-breaker", "open", timeout=UPDATE)
    expect(page.locator('.warning[data-kind="breaker_open"]')).to_be_visible()
    expect(page.locator("#runtimes tbody")).to_contain_text("half-open in")
    expect(page.locator("#state")).to_have_attribute("data-state", "warning")
    expect(page.locator("#recent tbody")).to_contain_text("spooled", timeout=UPDATE)
    assert counter(page, "failed") >= BREAKER_THRESHOLD
    assert page.evaluate("window.__notReloaded") is True
    page.screenshot(path=str(artifacts / "dashboard-warning-1280x800.png"))
    page.screenshot(path=str(artifacts / "dashboard-warning-full.png"), full_page=True)

    # a narrow (mobile) screen: nothing may scroll sideways
    page.set_viewport_size({"width": 390, "height": 844})
    page.wait_for_function(  # the chart is redrawn for the new width
        "() => { const c = document.getElementById('events-chart');"
        " return Math.abs(c.querySelector('svg').viewBox.baseVal.width - c.clientWidth) < 2; }"
    )
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"the page scrolls sideways by {overflow}px at 390px"
    page.screenshot(path=str(artifacts / "dashboard-narrow-390.png"), full_page=True)
    page.screenshot(path=str(artifacts / "dashboard-narrow-390-top.png"))
    receiver.ok()
