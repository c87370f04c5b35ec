"""The demo page at ``/``, driven end to end in Debian's Chromium.

One demo server (its own process, port and SQLite file) serves the whole module; each
test has a fresh browser context (no cookies) and its own demo user, so no test sees
another's login or second factor. (The demo's login throttle, 20 a minute per client IP,
bounds the logins this module may make: it makes about fifteen.) Besides each flow of
the page, the tests prove what a browser front end relies on: the cookie-mode tokens are
out of JavaScript's reach, a forged POST from another site or origin changes nothing, and
a logout in one tab ends the login of every other tab.

With ``TESSERA_SCREENSHOTS=DIR`` (``make e2e`` sets ``docs/screenshots``) the screenshots
shown in docs/demo.md are written there; otherwise into a temporary folder.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pyotp
import pytest

from .conftest import CHROMIUM, requires_browser
from .demo_support import DemoServer

pytestmark = requires_browser

TIMEOUT_MS = 15_000
# The demo's JWT cookie names (Tessera's defaults).
TOKEN_COOKIES = {"tessera_access", "tessera_refresh"}
PASSWORDS = {
    "user": "user-demo-pass-1",
    "manager": "manager-demo-pass-1",
    "hr": "hr-demo-pass-1",
    "staff": "staff-demo-pass-1",
    "root": "root-demo-pass-1",
    "admin": "admin-demo-pass-1",
}
MODE_NAMES = {
    "token": "an opaque token",
    "jwt": "JWT in HttpOnly cookies",
    "browser": "a browser session",
}
SCREENSHOT_LIMIT_BYTES = 200_000


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    server = DemoServer(tmp_path_factory.mktemp("demo-page"))
    try:
        server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def context(chromium):
    context = chromium.new_context(viewport={"width": 900, "height": 700})
    context.set_default_timeout(TIMEOUT_MS)
    try:
        yield context
    finally:
        context.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    folder = os.environ.get("TESSERA_SCREENSHOTS")
    path = Path(folder) if folder else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


def shoot(locator, folder: Path, name: str, **options) -> None:
    """A PNG of one part of the page, small enough for the docs."""
    path = folder / f"{name}.png"
    locator.screenshot(
        path=str(path), animations="disabled", caret="hide", mask_color="#bbb", **options
    )
    data = path.read_bytes()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert len(data) < SCREENSHOT_LIMIT_BYTES, f"{path} is {len(data)} bytes"


def open_page(context, demo_server):
    from playwright.sync_api import expect

    page = context.new_page()
    page.goto(f"{demo_server.origin}/")
    # The page has fetched its CSRF cookie and looked for a login this browser holds.
    expect(page.locator("#log")).to_contain_text("GET /api/auth/sessions/")
    return page


def log_in(page, username: str, mode: str, password: str | None = None) -> None:
    page.fill("#username", username)
    page.fill("#password", password or PASSWORDS[username])
    page.check(f"input[name=mode][value={mode}]")
    page.click("#login")


def expect_logged_in(page, username: str, mode: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#status")).to_have_text(
        f"Logged in as {username} with {MODE_NAMES[mode]}."
    )


def call_api(page, path: str):
    """Click the endpoint's button; the cell showing its answer."""
    from playwright.sync_api import expect

    cell = page.locator(f"#result-{path.split('/')[2]}")
    cell.evaluate("cell => { cell.textContent = ''; }")
    page.click(f"[data-call='{path}']")
    expect(cell).not_to_have_text("")
    return cell


def live_sessions(demo_server, username: str) -> list[tuple[str, str]]:
    return demo_server.rows(
        "SELECT s.kind, s.device_name FROM tessera_session s JOIN auth_user u "
        f"ON u.id = s.user_id WHERE u.username = '{username}' AND s.revoked_at IS NULL "
        "ORDER BY s.created_at"
    )


def emailed_link(demo_server, email: str, query: str) -> str:
    """The link (to the page, with ``query``) of the last e-mail to ``email`` that the
    console backend printed in the server's log."""
    pattern = re.compile(rf"(http://\S+/\?{query}=[^\s\"<]+)")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        log = demo_server.log.read_text(errors="replace")
        mails = log.split(f"To: {email}")
        if len(mails) > 1 and (links := pattern.findall(mails[-1])):
            return links[0]
        time.sleep(0.1)
    pytest.fail(f"no e-mail to {email} with a ?{query}= link in the server's log:\n{log}")


def test_the_page_asks_no_other_host_for_anything(context, demo_server):
    from urllib.parse import urlsplit

    served = urlsplit(demo_server.origin).netloc
    asked: list[str] = []

    def only_the_demo(route):
        asked.append(route.request.url)
        if urlsplit(route.request.url).netloc == served:
            route.continue_()
        else:
            route.abort("internetdisconnected")

    context.route("**/*", only_the_demo)
    page = open_page(context, demo_server)
    assert [url for url in asked if urlsplit(url).netloc != served] == []
    # Its own stylesheet and scripts were served and ran.
    assert {urlsplit(url).path for url in asked} >= {
        "/",
        "/static/demo/demo.css",
        "/static/demo/demo.js",
        "/static/demo/webauthn.js",
    }
    assert page.evaluate("getComputedStyle(document.body).maxWidth") != "none"


def test_sign_up_verify_the_address_and_log_in_with_each_credential(
    context, demo_server, screenshots
):
    from playwright.sync_api import expect

    page = open_page(context, demo_server)
    shoot(page, screenshots, "demo-page")
    page.fill("#reg-username", "newcomer")
    page.fill("#reg-email", "newcomer@example.com")
    page.fill("#reg-password", "Lantern-orbit-4417")
    page.click("#register")
    expect(page.locator("#sign-up-result")).to_have_text(
        "Signed up: 201 OK. The verification e-mail is in the demo's terminal."
    )
    assert demo_server.rows(
        "SELECT e.email, e.verified_at IS NULL FROM tessera_emailaddress e "
        "JOIN auth_user u ON u.id = e.user_id WHERE u.username = 'newcomer'"
    ) == [("newcomer@example.com", 1)]

    # The e-mail's link opens the page, which posts its key back.
    page.goto(emailed_link(demo_server, "newcomer@example.com", "verify_email"))
    expect(page.locator("#sign-up-result")).to_have_text("E-mail address verified.")
    assert demo_server.rows(
        "SELECT e.verified_at IS NOT NULL FROM tessera_emailaddress e "
        "JOIN auth_user u ON u.id = e.user_id WHERE u.username = 'newcomer'"
    ) == [(1,)]
    # The key works once.
    page.click("#verify")
    expect(page.locator("#sign-up-result")).to_have_text("Verification refused: 400 invalid_key.")

    for mode in ("token", "jwt", "browser"):
        log_in(page, "newcomer", mode, password="Lantern-orbit-4417")
        expect_logged_in(page, "newcomer", mode)
        expect(call_api(page, "/api/protected/")).to_have_text("200 Hello, newcomer.")
        expect(call_api(page, "/api/admin-content/")).to_have_text("403 admin_required")
    shoot(page.locator("#log-in"), screenshots, "demo-login")
    # Each login ended the one before it: only the browser session is left.
    assert live_sessions(demo_server, "newcomer") == [("browser", "Demo page")]


def test_a_forgotten_password_is_reset_through_the_emailed_link(context, demo_server):
    from playwright.sync_api import expect

    signup = urllib.request.Request(
        f"{demo_server.origin}/api/auth/register/",
        data=b'{"username": "forgetful", "email": "forgetful@example.com", '
        b'"password": "Quiet-harbour-2291"}',
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(signup, timeout=10) as response:
        assert response.status == 201
    page = open_page(context, demo_server)
    page.click("#password-reset summary")
    page.fill("#reset-email", "forgetful@example.com")
    page.click("#reset-request")
    expect(page.locator("#reset-result")).to_have_text(
        "Asked: if the address has an account, the e-mail is in the demo's terminal."
    )

    page.goto(emailed_link(demo_server, "forgetful@example.com", "reset_uid"))
    expect(page.locator("#reset-confirm-form")).to_be_visible()
    page.fill("#reset-password", "Bright-meadow-7350")
    page.click("#reset-confirm")
    expect(page.locator("#reset-result")).to_have_text(
        "Password changed, and every session of the account ended: log in with the new one."
    )
    log_in(page, "forgetful", "token", password="Quiet-harbour-2291")
    expect(page.locator("#log-in-result")).to_have_text("Login refused: 401 invalid_credentials.")
    log_in(page, "forgetful", "token", password="Bright-meadow-7350")
    expect_logged_in(page, "forgetful", "token")
    # The link works once.
    page.click("#reset-confirm")
    expect(page.locator("#reset-result")).to_have_text("Refused: 400 invalid_reset_token.")


def demo_post(demo_server, path: str, body: bytes, **headers) -> tuple[int, bytes]:
    request = urllib.request.Request(
        f"{demo_server.origin}{path}",
        data=body,
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def test_the_new_device_emails_link_ends_that_session_from_the_page(context, demo_server):
    from playwright.sync_api import expect

    body = b'{"username": "wanderer", "email": "wanderer@example.com", '
    body += b'"password": "Quiet-harbour-2291"}'
    assert demo_post(demo_server, "/api/auth/register/", body)[0] == 201
    login = b'{"username": "wanderer", "password": "Quiet-harbour-2291"}'
    assert demo_post(demo_server, "/api/auth/login/", login)[0] == 200
    # A second login with no known device: the account's address is told.
    status, answer = demo_post(demo_server, "/api/auth/login/", login)
    assert status == 200
    intruder = json.loads(answer)["token"]

    page = open_page(context, demo_server)
    page.goto(emailed_link(demo_server, "wanderer@example.com", "not_me"))
    expect(page.locator("#not-me")).to_be_visible()
    page.click("#not-me-one")
    expect(page.locator("#not-me-result")).to_have_text(
        "That session ended. Now reset your password: whoever logged in knows it."
    )
    check = urllib.request.Request(
        f"{demo_server.origin}/api/auth/me/", headers={"Authorization": f"Token {intruder}"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(check, timeout=10)
    assert refused.value.code == 401
    # The link works once.
    page.click("#not-me-all")
    expect(page.locator("#not-me-result")).to_contain_text("Refused: 400")


def test_each_role_endpoint_answers_the_role_it_names(context, demo_server, screenshots):
    from playwright.sync_api import expect

    page = open_page(context, demo_server)
    log_in(page, "manager", "token")
    expect_logged_in(page, "manager", "token")
    expect(call_api(page, "/api/protected/")).to_have_text("200 Hello, manager.")
    expect(call_api(page, "/api/manager-content/")).to_have_text("200 Manager content.")
    expect(call_api(page, "/api/admin-content/")).to_have_text("403 admin_required")
    expect(call_api(page, "/api/hr-content/")).to_have_text("403 role_required")
    shoot(page.locator("#call-api"), screenshots, "demo-roles")
    # The opaque token lives in the page's memory, never in a cookie.
    assert not any(c["name"] in TOKEN_COOKIES for c in context.cookies())


def test_cookie_mode_tokens_are_httponly_and_out_of_javascripts_reach(context, demo_server):
    from playwright.sync_api import expect

    page = open_page(context, demo_server)
    log_in(page, "hr", "jwt")
    expect_logged_in(page, "hr", "jwt")
    cookies = {c["name"]: c for c in context.cookies()}
    assert TOKEN_COOKIES <= set(cookies)
    for name in TOKEN_COOKIES:
        assert cookies[name]["httpOnly"] is True
        assert cookies[name]["sameSite"] == "Lax"
    assert cookies["tessera_refresh"]["path"] == "/api/auth/jwt/refresh/"
    visible = page.evaluate("document.cookie")
    assert "csrftoken=" in visible  # the page reads this one to send it back
    assert not any(name in visible for name in TOKEN_COOKIES)
    assert cookies["tessera_access"]["value"] not in page.content()
    # The browser sends them by itself: the API answers, and the refresh rotates them.
    expect(call_api(page, "/api/hr-content/")).to_have_text("200 HR content.")
    page.click("#jwt-refresh")
    expect(page.locator("#log-in-result")).to_have_text(
        "New JWT cookies (the refresh token was rotated)."
    )
    renewed = {c["name"]: c["value"] for c in context.cookies()}
    assert renewed["tessera_refresh"] != cookies["tessera_refresh"]["value"]
    assert "tessera_access" not in page.evaluate("document.cookie")
    # An access cookie gone (as when it expires): the page renews it with the refresh cookie
    # and the call goes through.
    context.clear_cookies(name="tessera_access")
    expect(call_api(page, "/api/protected/")).to_have_text("200 Hello, hr.")
    expect(page.locator("#log")).to_contain_text("POST /api/auth/jwt/refresh/ → 200")
    expect_logged_in(page, "hr", "jwt")


def test_totp_enrolment_then_the_login_stops_for_a_code(context, demo_server, screenshots):
    from playwright.sync_api import expect

    page = open_page(context, demo_server)
    log_in(page, "staff", "browser")
    expect_logged_in(page, "staff", "browser")
    page.click("#totp-setup")
    expect(page.locator("#totp-enrolment")).to_be_visible()
    qr = page.locator("#totp-qr")
    assert qr.get_attribute("src").startswith("data:image/svg+xml")
    # The QR code rendered (a broken image has no natural size).
    expect(qr).to_have_js_property("complete", True)
    assert qr.evaluate("image => image.naturalWidth") > 0
    totp = pyotp.TOTP(page.locator("#totp-secret").inner_text())
    shoot(
        page.locator("#second-factor"),
        screenshots,
        "demo-totp",
        # The secret and its QR code are new each run: masked, the picture is stable.
        mask=[page.locator("#totp-secret"), page.locator("#totp-qr")],
    )
    # The code of the step before now (one step of drift is allowed), so the login below can
    # use the current step: each step's code works once.
    page.fill("#totp-code", totp.at(time.time() - 30))
    page.click("#totp-confirm")
    expect(page.locator("#second-factor-result")).to_have_text(
        "Authenticator app added: every login of this account now asks for its code."
    )
    expect(page.locator("#recovery-codes li")).to_have_count(10)
    assert demo_server.rows(
        "SELECT a.type FROM tessera_authenticator a JOIN auth_user u ON u.id = a.user_id "
        "WHERE u.username = 'staff' AND a.confirmed_at IS NOT NULL ORDER BY a.type"
    ) == [("recovery_codes",), ("totp",)]

    page.click("#logout")
    expect(page.locator("#status")).to_have_text("Logged out.")
    log_in(page, "staff", "jwt")
    expect(page.locator("#mfa-form")).to_be_visible()
    expect(page.locator("#log-in-result")).to_have_text(
        "Second factor needed (totp, recovery_codes)."
    )
    # The password alone opened nothing.
    assert live_sessions(demo_server, "staff") == []
    now = time.time()
    valid = {totp.at(now + drift) for drift in (-30, 0, 30)}
    wrong = next(code for code in ("000000", "111111", "222222") if code not in valid)
    page.fill("#mfa-code", wrong)
    page.click("#mfa-submit")
    expect(page.locator("#log-in-result")).to_have_text(
        "Code refused: 400 invalid code: invalid_code."
    )
    shoot(page.locator("#log-in"), screenshots, "demo-mfa-login")
    page.fill("#mfa-code", totp.now())
    page.click("#mfa-submit")
    expect_logged_in(page, "staff", "jwt")
    expect(page.locator("#mfa-form")).to_be_hidden()
    assert live_sessions(demo_server, "staff") == [("jwt", "Demo page")]
    ((amr,),) = demo_server.rows(
        "SELECT s.amr FROM tessera_session s JOIN auth_user u ON u.id = s.user_id "
        "WHERE u.username = 'staff' AND s.revoked_at IS NULL"
    )
    assert "otp" in amr


def test_register_a_passkey_and_log_in_with_it_alone(context, demo_server):
    from playwright.sync_api import expect

    page = open_page(context, demo_server)
    devtools = context.new_cdp_session(page)
    devtools.send("WebAuthn.enable")
    devtools.send(
        "WebAuthn.addVirtualAuthenticator",
        {
            "options": {
                "protocol": "ctap2",
                "transport": "internal",
                "hasResidentKey": True,
                "hasUserVerification": True,
                "isUserVerified": True,
                "automaticPresenceSimulation": True,
            }
        },
    )
    log_in(page, "root", "token")
    expect_logged_in(page, "root", "token")
    page.fill("#passkey-name", "Chromium")
    page.click("#passkey-register")
    expect(page.locator("#second-factor-result")).to_have_text("Passkey registered: Chromium.")
    expect(page.locator("#recovery-codes li")).to_have_count(10)

    page.click("#logout")
    expect(page.locator("#status")).to_have_text("Logged out.")
    page.check("input[name=mode][value=jwt]")
    page.click("#passkey-login")
    expect_logged_in(page, "root", "jwt")
    expect(call_api(page, "/api/protected/")).to_have_text("200 Hello, root.")
    ((amr,),) = demo_server.rows(
        "SELECT s.amr FROM tessera_session s JOIN auth_user u ON u.id = s.user_id "
        "WHERE u.username = 'root' AND s.revoked_at IS NULL"
    )
    assert "hwk" in amr

    # The password then stops for a second factor, which the passkey gives.
    log_in(page, "root", "token")
    expect(page.locator("#log-in-result")).to_have_text(
        "Second factor needed (webauthn, recovery_codes)."
    )
    # The JWT login was ended first: the page says so.
    expect(page.locator("#status")).to_have_text("Not logged in.")
    page.click("#mfa-passkey")
    expect_logged_in(page, "root", "token")
    expect(page.locator("#mfa-form")).to_be_hidden()
    expect(call_api(page, "/api/protected/")).to_have_text("200 Hello, root.")


def test_list_sessions_create_a_personal_token_and_revoke_it(context, demo_server, screenshots):
    from playwright.sync_api import expect

    page = open_page(context, demo_server)
    log_in(page, "user", "token")
    expect_logged_in(page, "user", "token")
    page.fill("#pat-name", "Nightly report")
    page.check("input[name=pat-scope][value='posts:read']")
    page.fill("#pat-days", "7")
    page.click("#pat-create")
    expect(page.locator("#pat-result")).to_have_text(
        "Token created: Nightly report, scopes posts:read."
    )
    token = page.locator("#pat-token").inner_text()
    assert token.startswith("tsr1_")
    # The token works on its own, as a script would send it.
    request = urllib.request.Request(
        f"{demo_server.origin}/api/protected/", headers={"Authorization": f"Token {token}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200

    page.click("#sessions-list")
    rows = page.locator("#sessions tbody tr")
    expect(rows).to_have_count(2)
    expect(rows.filter(has_text="token (this one)")).to_contain_text("Demo page")
    token_row = rows.filter(has_text="Nightly report")
    expect(token_row).to_contain_text("pat")
    shoot(
        page.locator("#sessions-section"),
        screenshots,
        "demo-sessions",
        mask=[page.locator("#sessions tbody td:nth-child(3)")],
    )
    token_row.locator("button").click()
    expect(rows).to_have_count(1)
    assert live_sessions(demo_server, "user") == [("token", "Demo page")]
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 401

    page.click("#logout")
    expect(page.locator("#status")).to_have_text("Logged out.")
    assert live_sessions(demo_server, "user") == []


def test_a_logout_in_one_tab_ends_the_login_of_the_other(context, demo_server, screenshots):
    from playwright.sync_api import expect

    first = open_page(context, demo_server)
    log_in(first, "admin", "jwt")
    expect_logged_in(first, "admin", "jwt")
    # The second tab shares the browser's cookies, so it finds the login on opening.
    second = open_page(context, demo_server)
    expect_logged_in(second, "admin", "jwt")
    expect(call_api(second, "/api/admin-content/")).to_have_text("200 Admin content.")
    access = next(c["value"] for c in context.cookies() if c["name"] == "tessera_access")

    first.click("#logout")
    expect(first.locator("#status")).to_have_text("Logged out.")
    expect(call_api(second, "/api/admin-content/")).to_have_text("401 not_authenticated")
    expect(second.locator("#status")).to_have_text(
        "Not logged in: the server refused this tab's credential (401 not_authenticated)."
    )
    shoot(second.locator("#status"), screenshots, "demo-other-tab")
    # Not only were the cookies cleared: the session is revoked, so a copy of the access
    # token is refused too.
    assert live_sessions(demo_server, "admin") == []
    copied = urllib.request.Request(
        f"{demo_server.origin}/api/protected/", headers={"Cookie": f"tessera_access={access}"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(copied, timeout=10)
    assert refused.value.code == 401


class ForgedForm(BaseHTTPRequestHandler):
    """Serves one page that posts a form to the demo as soon as it loads."""

    target = ""

    def do_GET(self):
        body = (
            "<!doctype html><title>Win a prize</title>"
            f'<form id="forged" method="post" action="{self.target}">'
            '<input name="name" value="forged"><input name="scopes" value="read"></form>'
            "<script>document.getElementById('forged').submit()</script>"
        ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def forger(demo_server):
    """A second server, on another port, serving the forged form."""
    handler = type("Forged", (ForgedForm,), {"target": f"{demo_server.origin}/api/auth/tokens/"})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("forger_host", "cookies_sent", "status", "code"),
    [
        # Another site: SameSite=Lax keeps the token cookies off a cross-site POST, so the
        # request carries no credential at all.
        ("127.0.0.1", False, 401, "not_authenticated"),
        # The same site on another port (cookies ignore ports): the cookies go with the
        # POST, and the CSRF check refuses it (foreign Origin, no token).
        ("localhost", True, 403, "csrf_failed"),
    ],
    ids=["cross-site", "same-site-other-origin"],
)
def test_a_forged_post_from_another_origin_changes_nothing(
    context, demo_server, forger, forger_host, cookies_sent, status, code
):
    from playwright.sync_api import expect

    page = open_page(context, demo_server)
    username = "hr" if cookies_sent else "manager"
    log_in(page, username, "jwt")
    expect_logged_in(page, username, "jwt")
    before = live_sessions(demo_server, username)

    forged = context.new_page()
    with forged.expect_response(lambda r: r.url.endswith("/api/auth/tokens/")) as answer:
        forged.goto(f"http://{forger_host}:{forger}/")
    response = answer.value
    sent = response.request.all_headers().get("cookie", "")
    assert ("tessera_access=" in sent) is cookies_sent
    assert response.request.method == "POST"
    assert response.status == status
    # A form's navigation asks for HTML: the browsable API renders the error.
    assert code in response.text()

    assert live_sessions(demo_server, username) == before
    assert not demo_server.rows(
        "SELECT id FROM tessera_session WHERE kind = 'pat' AND device_name = 'forged'"
    )
    # The victim's own page goes on working.
    expect(call_api(page, "/api/protected/")).to_have_text(f"200 Hello, {username}.")
