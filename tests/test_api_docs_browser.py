"""Swagger UI and Redoc render the whole API from the demo's own files, with no network.

Debian's Chromium, driven by Playwright, loads ``/api/docs/`` and ``/api/redoc/`` from
the demo served on a free port; every request to another host is aborted and recorded,
so a page that still needed a CDN (drf-spectacular's default) would render nothing and
name the host it wanted. Both pages must show every operation of the schema the same
server generates.
"""

from __future__ import annotations

import json
import urllib.request
from urllib.parse import urlsplit

import pytest

from .conftest import CHROMIUM, requires_browser
from .demo_support import DemoServer

pytestmark = requires_browser

TIMEOUT_MS = 20_000
METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def schema_operations(origin: str) -> dict[tuple[str, str], str]:
    """``(METHOD, path) -> operationId`` for every operation of the demo's schema."""
    with urllib.request.urlopen(f"{origin}/api/schema/?format=json", timeout=30) as response:
        schema = json.load(response)
    return {
        (method.upper(), path): operation["operationId"]
        for path, item in schema["paths"].items()
        for method, operation in item.items()
        if method in METHODS
    }


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """One demo server for both pages: they only read, so they can share it."""
    server = DemoServer(tmp_path_factory.mktemp("api-docs"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def offline_page(demo):
    """A Chromium page that reaches the demo server and nothing else; and what it refused."""
    from playwright.sync_api import sync_playwright

    served = urlsplit(demo.origin).netloc
    refused: list[tuple[str, str]] = []

    def only_the_demo(route):
        if urlsplit(route.request.url).netloc == served:
            route.continue_()
        else:
            refused.append((route.request.resource_type, route.request.url))
            route.abort("internetdisconnected")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.route("**/*", only_the_demo)
            yield page, refused
        finally:
            browser.close()


def test_swagger_ui_renders_every_operation_offline(demo, offline_page):
    page, refused = offline_page
    expected = schema_operations(demo.origin)
    assert ("POST", "/api/auth/login/") in expected
    assert ("DELETE", "/api/auth/sessions/{session_id}/") in expected

    page.goto(f"{demo.origin}/api/docs/")
    page.wait_for_selector(".opblock")
    rendered = page.eval_on_selector_all(
        ".opblock",
        """blocks => blocks.map(block => [
            block.querySelector('.opblock-summary-method').textContent.trim(),
            block.querySelector('.opblock-summary-path').getAttribute('data-path'),
        ])""",
    )
    assert sorted(map(tuple, rendered)) == sorted(expected)
    assert page.locator(".swagger-ui .info .title").inner_text().startswith("Tessera demo API")
    assert refused == []
    # The guard itself: a request for another host is refused, and recorded.
    reached = page.evaluate("fetch('https://cdn.example/x.js').then(() => true, () => false)")
    assert reached is False
    assert refused == [("fetch", "https://cdn.example/x.js")]


def test_redoc_renders_every_operation_offline(demo, offline_page):
    page, refused = offline_page
    expected = schema_operations(demo.origin)

    page.goto(f"{demo.origin}/api/redoc/")
    page.wait_for_selector("[data-section-id^='operation/']")
    rendered = page.eval_on_selector_all(
        "[data-section-id^='operation/']",
        "sections => sections.map(s => s.getAttribute('data-section-id'))",
    )
    assert sorted(rendered) == sorted(f"operation/{o}" for o in expected.values())
    login = page.locator("[data-section-id='operation/login_create'] h2")
    assert login.inner_text().strip() == "login_create"
    # Not even the logo of Redoc's footer, which it would fetch from its maker's site.
    assert refused == []
