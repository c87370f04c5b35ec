"""A real browser registers a passkey on the demo's page, logs out, and logs back in with it.

Debian's Chromium, driven by Playwright, with a virtual authenticator attached through
the DevTools protocol (a platform authenticator that stores discoverable credentials and
verifies the user). The demo project runs in its own process on a free port with a
database of its own, so the page talks to Tessera exactly as a deployed front end would:
``navigator.credentials.create()`` and ``.get()`` against the relying party ``localhost``.
"""

from __future__ import annotations

import pytest

from .conftest import CHROMIUM, requires_browser

pytestmark = requires_browser

DEMO_USER, DEMO_PASSWORD = "user", "user-demo-pass-1"
TIMEOUT_MS = 15_000


@pytest.fixture
def page_with_authenticator():
    """A Chromium page with a virtual platform authenticator; the page and its id."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            page = browser.new_context().new_page()
            page.set_default_timeout(TIMEOUT_MS)
            devtools = page.context.new_cdp_session(page)
            devtools.send("WebAuthn.enable")
            added = devtools.send(
                "WebAuthn.addVirtualAuthenticator",
                {
                    "options": {
                        "protocol": "ctap2",
                        "transport": "internal",
                        "hasResidentKey": True,
                        "hasUserVerification": True,
                        "isUserVerified": True,
                        # Touches the key for the user, as a click on a prompt would.
                        "automaticPresenceSimulation": True,
                    }
                },
            )
            yield page, devtools, added["authenticatorId"]
        finally:
            browser.close()


def test_register_a_passkey_log_out_and_log_back_in_with_it(demo, page_with_authenticator):
    from playwright.sync_api import expect

    page, devtools, authenticator_id = page_with_authenticator
    status = page.locator("#status")
    page.goto(f"{demo.origin}/passkeys/")

    page.fill("#username", DEMO_USER)
    page.fill("#password", DEMO_PASSWORD)
    page.click("#password-login")
    expect(status).to_have_text(f"Logged in as {DEMO_USER} with a password.")

    page.fill("#passkey-name", "Chromium")
    page.click("#register")
    expect(status).to_have_text("Passkey registered: Chromium.")
    stored = devtools.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})
    (credential,) = stored["credentials"]
    assert credential["isResidentCredential"] is True
    assert credential["rpId"] == "localhost"
    assert demo.rows(
        "SELECT name, passwordless FROM tessera_authenticator WHERE type = 'webauthn'"
    ) == [("Chromium", 1)]

    page.click("#logout")
    expect(status).to_have_text("Logged out.")
    assert page.evaluate("fetch('/api/auth/sessions/').then((r) => r.status)") == 401

    page.click("#passkey-login")
    expect(status).to_have_text(f"Logged in with a passkey as {DEMO_USER}.")
    expect(page.locator("#log")).to_contain_text('"amr":["hwk","user","mfa"]')
    assert page.evaluate("fetch('/api/auth/me/').then((r) => r.status)") == 200
    # The server holds the counter the authenticator reported, and when the key was used.
    stored = devtools.send("WebAuthn.getCredentials", {"authenticatorId": authenticator_id})
    ((sign_count, last_used),) = demo.rows(
        "SELECT sign_count, last_used_at FROM tessera_authenticator WHERE type = 'webauthn'"
    )
    assert sign_count == stored["credentials"][0]["signCount"]
    assert last_used is not None
