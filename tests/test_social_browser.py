"""Social sign-in in Chromium: the demo's page, the demo's own OpenID provider, the
redirect flow as a user clicks through it (nothing leaves this machine)."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest

from .conftest import CHROMIUM, requires_browser
from .demo_support import EXAMPLE, DemoServer, free_port

pytestmark = requires_browser

TIMEOUT_MS = 20_000


@pytest.fixture
def demo_with_provider(tmp_path) -> Iterator[DemoServer]:
    """The demo, and ``manage.py demo_provider`` on a free port as its provider."""
    server = DemoServer(tmp_path)
    port = free_port()
    server.env["DEMO_PROVIDER_URL"] = f"http://127.0.0.1:{port}"
    provider = subprocess.Popen(
        [sys.executable, "manage.py", "demo_provider", "--port", str(port)],
        cwd=EXAMPLE,
        env=server.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    try:
        _wait_for(f"http://127.0.0.1:{port}/.well-known/openid-configuration", provider)
        server.start()
        yield server
    finally:
        server.stop()
        provider.terminate()
        provider.wait(timeout=10)


def _wait_for(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail("the demo provider exited")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.2)
    pytest.fail("the demo provider did not answer in time")


def test_sign_in_with_the_demo_provider_through_the_redirect_flow(demo_with_provider):
    from playwright.sync_api import sync_playwright

    demo = demo_with_provider
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(TIMEOUT_MS)
            page.goto(f"{demo.origin}/social/")
            page.click("#sign-in")
            # The provider's own page, on another host.
            page.wait_for_selector("#username")
            assert page.url.startswith(demo.env["DEMO_PROVIDER_URL"] + "/authorize?")
            page.fill("#username", "ada")
            page.fill("#password", "wrong")
            page.click("#sign-in")
            assert "Wrong username or password" in page.content()
            page.fill("#username", "ada")
            page.fill("#password", "lovelace")
            page.click("#sign-in")
            page.wait_for_function(
                "document.getElementById('status').textContent.startsWith('Signed in')"
            )
            assert page.inner_text("#status").endswith("through demo")
            # The single-use code is gone from the address bar.
            assert page.url == f"{demo.origin}/social/"
            assert '"provider": "demo"' in page.inner_text("#log")
        finally:
            browser.close()
    rows = demo.rows("SELECT provider, amr, device_name FROM tessera_session")
    assert rows == [("demo", '["fed"]', "Social demo page")]
    identities = demo.rows("SELECT issuer, subject, provider FROM tessera_externalidentity")
    assert identities == [(demo.env["DEMO_PROVIDER_URL"], "demo-ada", "demo")]
