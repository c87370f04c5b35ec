"""Known devices: every successful login answers with a signed device identifier bound to
its user; presenting it again keeps the device's key, until the device is forgotten."""

from __future__ import annotations

import time
import uuid

import pytest
from django.contrib.auth.hashers import PBKDF2PasswordHasher
from django.core import signing
from django.test import override_settings
from rest_framework.parsers import JSONParser
from rest_framework.request import Request
from rest_framework.test import APIRequestFactory

from tessera.models import ForgottenDevice, Session
from tessera.services import devices

from .accounts_support import NEW_PASSWORD
from .conftest import JWT_URL, LOGIN_URL, PASSWORD, auth_header, log_in, post_login, with_csrf
from .mfa_support import mfa_ticket, second_factor

pytestmark = pytest.mark.django_db
SLIDING_URL = "/api/auth/jwt/sliding/"
SESSION_LOGIN_URL = "/api/auth/session/login/"
COOKIE = "tessera_device"


class QuickPBKDF2(PBKDF2PasswordHasher):
    iterations = 1000


def device_key(user, presented):
    user.refresh_from_db()
    return devices.known_device_key(user, presented)


@pytest.mark.parametrize("path", [LOGIN_URL, JWT_URL, SLIDING_URL])
def test_every_api_login_answers_with_a_device_of_its_user(api, user, other_user, path):
    device = log_in(api, path=path)["device"]
    assert device_key(user, device)
    # Valid for alice only.
    assert devices.known_device_key(other_user, device) is None
    # Token logins get no cookie: the client keeps the body field.
    assert COOKIE not in api.cookies


def test_presenting_a_known_device_keeps_its_key(api, user):
    first = log_in(api)["device"]
    again = log_in(api, device=first)["device"]
    assert device_key(user, again) == device_key(user, first)
    # A device that is not alice's gets a new key, not its own.
    stranger = devices.issue_device(user, "someone-else")
    assert device_key(user, log_in(api, device=stranger)["device"]) == "someone-else"
    forged = stranger[:-2] + ("AA" if stranger[-2:] != "AA" else "BB")
    fresh = log_in(api, device=forged)["device"]
    assert device_key(user, fresh) not in (None, "someone-else", device_key(user, first))


def test_a_new_device_is_keyed_by_its_first_session_and_every_session_records_it(api, user):
    first = log_in(api)
    assert device_key(user, first["device"]) == first["session"]["id"]
    again = log_in(api, device=first["device"])
    keys = dict(Session.objects.values_list("pk", "device_key"))
    assert keys == {
        uuid.UUID(first["session"]["id"]): first["session"]["id"],
        uuid.UUID(again["session"]["id"]): first["session"]["id"],
    }


def test_a_hasher_upgrade_at_login_forgets_no_device(api, user, settings):
    device = log_in(api)["device"]
    old_hash = user.password
    # Another hasher first: the next login rehashes the password it checked.
    settings.PASSWORD_HASHERS = [f"{__name__}.QuickPBKDF2", *settings.PASSWORD_HASHERS]
    again = log_in(api, device=device)["device"]
    user.refresh_from_db()
    assert user.password != old_hash and user.password.startswith("pbkdf2_sha256$")
    assert device_key(user, again) == device_key(user, device) is not None


def test_forgetting_a_device_again_moves_its_one_record(user, clock):
    devices.forget_device(user, "laptop")
    clock.advance(minutes=5)
    devices.forget_device(user, "laptop")
    assert list(ForgottenDevice.objects.values_list("device_key", "forgotten_at")) == [
        ("laptop", clock.now)
    ]


def test_an_identifier_issued_after_every_device_was_forgotten_is_known(user, monkeypatch):
    before = devices.issue_device(user, "laptop")
    devices.forget_all_devices(user)
    # Within the margin, a server whose clock is ahead (or a login answered meanwhile)
    # issues a forgotten identifier; after it, a known one.
    soon = time.time() + devices.FORGET_MARGIN.total_seconds() - 0.5
    monkeypatch.setattr(devices.time, "time", lambda: soon)
    within = devices.issue_device(user, "laptop")
    later = soon + 1
    monkeypatch.setattr(devices.time, "time", lambda: later)
    after = devices.issue_device(user, "laptop")
    assert devices.known_device_key(user, before) is None
    assert devices.known_device_key(user, within) is None
    assert devices.known_device_key(user, after) == "laptop"


def test_another_users_device_is_not_known(api, user, other_user):
    bobs = log_in(api, "bob")["device"]
    assert devices.known_device_key(user, bobs) is None
    alices = log_in(api, device=bobs)["device"]
    assert device_key(user, alices) != device_key(other_user, bobs)


def test_a_password_change_forgets_every_device_but_its_own(api, user):
    body = log_in(api)
    other = log_in(api)["device"]
    response = api.post(
        "/api/auth/password/change/",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        format="json",
        **auth_header(body["token"]),
    )
    assert response.status_code == 204, response.content
    assert device_key(user, other) is None
    # The device that changed it has just proved it knows the new password.
    assert device_key(user, body["device"]) == body["session"]["id"]


def test_a_password_set_anywhere_else_forgets_every_device(api, user):
    device = log_in(api)["device"]
    user.set_password(NEW_PASSWORD)
    user.save()
    assert device_key(user, device) is None


def test_an_account_that_never_logged_in_has_no_device_to_forget(user):
    user.set_password(NEW_PASSWORD)
    user.save()
    assert not ForgottenDevice.objects.exists()


def test_only_forgetting_every_device_spares_one(user):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        ForgottenDevice.objects.create(user=user, device_key="laptop", kept_key="phone")


@override_settings(TESSERA={"JWT_REVOCATION_CHECK": False})
def test_a_jwt_password_change_keeps_its_device_without_revocation_checks(api, user):
    body = log_in(api, path=JWT_URL)
    response = api.post(
        "/api/auth/password/change/",
        {"current_password": PASSWORD, "new_password": NEW_PASSWORD},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {body['access']}",
    )
    assert response.status_code == 204, response.content
    assert device_key(user, body["device"]) is not None


def test_a_known_device_login_looks_its_device_up_once(api, user):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    device = log_in(api)["device"]
    with CaptureQueriesContext(connection) as capture:
        log_in(api, device=device)
    lookups = [q["sql"] for q in capture.captured_queries if "forgottendevice" in q["sql"]]
    assert len(lookups) == 1, lookups


def test_a_later_change_forgets_the_device_an_earlier_one_kept(user, clock, monkeypatch):
    monkeypatch.setattr(devices.time, "time", lambda: clock.now.timestamp())
    kept = devices.issue_device(user, "laptop")
    clock.advance(seconds=10)
    devices.forget_all_devices(user, keep="laptop")
    assert devices.known_device_key(user, kept) == "laptop"
    clock.advance(seconds=10)
    reissued = devices.issue_device(user, "laptop")
    assert devices.known_device_key(user, reissued) == "laptop"
    clock.advance(seconds=10)
    devices.forget_all_devices(user, keep="phone")
    assert devices.known_device_key(user, kept) is None
    assert devices.known_device_key(user, reissued) is None


@pytest.mark.parametrize(
    "presented",
    ["", "garbage", "x" * (devices.MAX_LENGTH + 1), signing.dumps({"k": "a", "b": "b"})],
)
def test_bad_identifiers_are_unknown(user, presented):
    assert devices.known_device_key(user, presented) is None


@pytest.mark.parametrize(
    "change",
    [{"t": None}, {"t": "1"}, {"k": ""}, {"k": "k" * (devices.KEY_LENGTH + 1)}, {"k": 7}],
)
def test_identifiers_with_a_bad_field_are_unknown(user, settings, change):
    payload = signing.loads(
        devices.issue_device(user, "laptop"), key=settings.SECRET_KEY, salt=devices.SALT
    )
    payload.update(change)
    forged = signing.dumps(payload, key=settings.SECRET_KEY, salt=devices.SALT)
    assert devices.known_device_key(user, forged) is None


def test_an_identifier_signed_for_another_use_is_unknown(user, settings):
    device = devices.issue_device(user, "laptop")
    payload = signing.loads(device, key=settings.SECRET_KEY, salt=devices.SALT)
    assert devices.known_device_key(user, signing.dumps(payload, salt="other")) is None


def test_identifiers_expire_after_the_device_lifetime(user, monkeypatch, settings):
    device = devices.issue_device(user, "laptop")
    lifetime = settings.TESSERA.get("DEVICE_LIFETIME") or devices.tessera_settings.DEVICE_LIFETIME
    later = time.time() + lifetime.total_seconds() + 5
    monkeypatch.setattr(signing.time, "time", lambda: later)
    assert devices.known_device_key(user, device) is None


def test_the_identifier_names_no_user_in_clear(user):
    device = devices.issue_device(user, "laptop")
    payload = signing.b64_decode(device.split(":")[0].encode()).decode()
    assert "alice" not in payload and user.password not in payload


def test_the_device_is_read_from_the_body_then_the_cookie():
    factory = APIRequestFactory()
    request = factory.post("/", {"device": "from-body"}, format="json")
    request.COOKIES[COOKIE] = "from-cookie"
    unparsed = Request(request, parsers=[JSONParser()])
    # A body the view has not parsed is left alone (HTTP Basic authenticates before).
    assert devices.presented_device(unparsed) == "from-cookie"
    parsed = Request(factory.post("/", {"device": "from-body"}, format="json"), [JSONParser()])
    assert parsed.data == {"device": "from-body"}
    assert devices.presented_device(parsed) == "from-body"
    plain = factory.post("/", {"username": "alice"})
    plain.COOKIES[COOKIE] = "from-cookie"
    assert devices.presented_device(plain) == "from-cookie"
    assert devices.presented_device(factory.get("/")) is None


def test_a_browser_login_sets_the_device_cookie(browser, user, settings):
    settings.SESSION_COOKIE_SECURE = True
    settings.SESSION_COOKIE_SAMESITE = "Strict"
    response = post_login(browser, path=SESSION_LOGIN_URL)
    assert response.status_code == 403  # no CSRF token: nothing issued
    headers = with_csrf(browser)
    response = browser.post(
        SESSION_LOGIN_URL, {"username": "alice", "password": PASSWORD}, format="json", **headers
    )
    assert response.status_code == 200, response.content
    cookie = response.cookies[COOKIE]
    assert device_key(user, cookie.value)
    # HttpOnly, so out of the body too: the page's JavaScript never sees it.
    assert "device" not in response.json()
    assert cookie["httponly"] and cookie["secure"] and cookie["samesite"] == "Strict"
    assert cookie["path"] == "/"
    # The next login presents the cookie and keeps the device (the login rotated the
    # CSRF token).
    headers = {"HTTP_X_CSRFTOKEN": browser.cookies[settings.CSRF_COOKIE_NAME].value}
    again = browser.post(
        SESSION_LOGIN_URL, {"username": "alice", "password": PASSWORD}, format="json", **headers
    )
    assert again.status_code == 200, again.content
    assert device_key(user, again.cookies[COOKIE].value) == device_key(user, cookie.value)


@override_settings(
    TESSERA={"JWT_COOKIES": True, "JWT_COOKIE_SECURE": False, "JWT_COOKIE_SAMESITE": "None"}
)
def test_cookie_mode_sets_the_device_cookie_with_the_jwt_cookies_flags(browser, user):
    headers = with_csrf(browser)
    response = browser.post(
        JWT_URL, {"username": "alice", "password": PASSWORD}, format="json", **headers
    )
    assert response.status_code == 200, response.content
    cookie = response.cookies[COOKIE]
    assert device_key(user, cookie.value)
    assert "device" not in response.json()
    assert cookie["httponly"] and not cookie["secure"] and cookie["samesite"] == "None"


@override_settings(TESSERA={"DEVICE_COOKIE": "known"})
def test_the_cookie_name_is_a_setting(browser, user):
    headers = with_csrf(browser)
    response = browser.post(
        SESSION_LOGIN_URL, {"username": "alice", "password": PASSWORD}, format="json", **headers
    )
    assert "known" in response.cookies and COOKIE not in response.cookies


def test_the_second_factor_completion_answers_with_a_device(api, alice_mfa):
    first = devices.issue_device(alice_mfa.user, "laptop")
    ticket = mfa_ticket(api)
    response = second_factor(api, ticket, code=alice_mfa.next_code(), device=first)
    assert response.status_code == 200, response.content
    assert device_key(alice_mfa.user, response.json()["device"]) == "laptop"


def test_a_refused_login_answers_no_device(api, user):
    response = post_login(api, password="wrong")
    assert response.status_code == 401
    assert "device" not in response.json()
    assert COOKIE not in response.cookies
