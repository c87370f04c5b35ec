"""What every test file shares: users, clients, log-ins, headers, a clock, service marks."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from functools import partial
from pathlib import Path
from unittest import mock

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import MD5PasswordHasher
from django.core.cache import caches
from django.db import connection
from django.dispatch import Signal
from django.middleware.csrf import _get_new_csrf_string
from django.utils import timezone
from hypothesis import settings as hypothesis_settings
from rest_framework.test import APIClient

from tessera import session_cache
from tessera.services import emails

from . import social_support
from .demo_support import DemoServer
from .fake_issuer import FakeIssuer
from .realservers.availability import missing_binaries
from .testapp.seed import seed_roles_and_users

# Property tests: a bounded, repeatable run in the suite; `make fuzz` runs the long one.
hypothesis_settings.register_profile(
    "suite", max_examples=40, deadline=timedelta(seconds=1), derandomize=True, database=None
)
hypothesis_settings.register_profile(
    "fuzz", max_examples=5000, deadline=timedelta(seconds=1), print_blob=True
)
hypothesis_settings.load_profile(os.environ.get("TESSERA_HYPOTHESIS_PROFILE", "suite"))

PASSWORD = "correct-horse-battery-staple"
CREDENTIALS = {"username": "alice", "password": PASSWORD}
LOGIN_URL = "/api/auth/login/"
JWT_URL = "/api/auth/jwt/"
REGISTER_URL = "/api/auth/register/"
PROTECTED_URL = "/api/protected/"
# The scopes the test app's tokens may be given (see docs/permissions.md).
SCOPES = {
    "read": "Read access.",
    "write": "Write access.",
    "posts:read": "Read your own posts.",
    "posts:write": "Create, change and delete posts.",
}
real_now = timezone.now


# --- Backing services -----------------------------------------------------------------

POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
REDIS = bool(os.environ.get("REDIS_URL"))
# Set by .ci/run for its PostgreSQL + Redis pass: there a test skipped for want of a
# service would let the pass claim what it did not run, so the test fails instead.
REQUIRE_SERVICES = os.environ.get("TESSERA_REQUIRE_SERVICES") == "1"
MISSING_BINARIES = ", ".join(missing_binaries())
SERVICES = {
    "postgres": (
        POSTGRES,
        "needs PostgreSQL (set DATABASE_URL=postgres://…): SQLite has no row locks",
    ),
    "redis": (REDIS, "needs Redis (set REDIS_URL=redis://…) for a cache shared by processes"),
    "realservers": (not MISSING_BINARIES, f"needs {MISSING_BINARIES} to start its own servers"),
}
requires_postgres = pytest.mark.postgres
requires_redis = pytest.mark.redis
# AUTH_USER_MODEL cannot change inside one process: the e-mail user model's tests run in
# their own pass. Keyed on the settings module, not on AUTH_USER_MODEL: under the right
# settings a wrong user model must fail (test_the_custom_model_is_active), not skip.
requires_email_user_model = pytest.mark.skipif(
    os.environ.get("DJANGO_SETTINGS_MODULE") != "tests.settings_email_user",
    reason="needs --ds=tests.settings_email_user (run by `make test`)",
)


# Debian's Chromium, driven by Playwright. Without Chromium a browser test skips, even
# under TESSERA_REQUIRE_SERVICES=1 (.ci/run installs it, and fails in CI when it cannot);
# once Chromium is there, a missing Playwright fails such a pass instead of skipping.
# In CI (CI=true) a browser test that cannot drive a browser fails: it never skips.
CHROMIUM = Path(os.environ.get("TESSERA_CHROMIUM", "/usr/bin/chromium"))
PLAYWRIGHT = importlib.util.find_spec("playwright") is not None
REQUIRE_BROWSER = os.environ.get("CI") == "true"
requires_browser = pytest.mark.browser


def missing_services(item: pytest.Item) -> list[str]:
    """Why ``item`` cannot run here: one reason per service it is marked for and lacks."""
    return [
        reason
        for marker, (available, reason) in SERVICES.items()
        if not available and item.get_closest_marker(marker)
    ]


def missing_browser(item: pytest.Item) -> str | None:
    """Why ``item``, if marked ``browser``, cannot drive a browser here."""
    if not item.get_closest_marker("browser"):
        return None
    if not CHROMIUM.exists():
        return f"needs Debian's Chromium at {CHROMIUM} (apt-get install chromium)"
    if not PLAYWRIGHT:
        return "needs Playwright for Python (pip install playwright)"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # A skip mark rather than pytest.skip() in a hook, so the summary names the test's line.
    for item in items:
        reasons = [] if REQUIRE_SERVICES else missing_services(item)
        browser = missing_browser(item)
        if browser and not REQUIRE_BROWSER and not (REQUIRE_SERVICES and CHROMIUM.exists()):
            reasons.append(browser)
        if reasons:
            item.add_marker(pytest.mark.skip(reason=reasons[0]))


def pytest_runtest_setup(item: pytest.Item) -> None:
    if REQUIRE_BROWSER and (browser := missing_browser(item)):
        pytest.fail(f"CI=true, but this test {browser}", pytrace=False)
    if not REQUIRE_SERVICES:
        return
    reasons = missing_services(item)
    if CHROMIUM.exists() and (browser := missing_browser(item)):
        reasons.append(browser)
    if reasons:
        pytest.fail(f"TESSERA_REQUIRE_SERVICES=1, but this test {reasons[0]}", pytrace=False)


@pytest.fixture(autouse=True)
def _clear_cache(monkeypatch):
    for cache in caches.all():
        cache.clear()
    # Each test starts as a process that has seen no cache failure (none to replay).
    monkeypatch.setattr(session_cache, "_failure_log", session_cache.FailureLog())
    yield
    for cache in caches.all():
        cache.clear()


@pytest.fixture(autouse=True)
def _mail_in_request_thread(request, monkeypatch):
    """The default dispatcher delivers in the request's thread, unless a test is marked.

    Most tests read mail.outbox as the request returns, and a test's transaction is not
    seen from another thread; tests marked ``mail_in_background`` exercise the real one.
    """
    if request.node.get_closest_marker("mail_in_background"):
        yield
        assert emails.wait_for_pending(10), "e-mail still queued after the test"
        return
    monkeypatch.setattr(emails, "deliver_in_background", emails.deliver)
    yield


@pytest.fixture
def demo(tmp_path) -> Iterator[DemoServer]:
    """The demo project served by runserver on a free port, seeded with the demo users."""
    server = DemoServer(tmp_path)
    try:
        server.start()
        yield server
    finally:
        server.stop()


# --- Transactions ---------------------------------------------------------------------


@pytest.fixture
def atomic_requests(monkeypatch):
    """Each request in its own transaction, as in a project with ATOMIC_REQUESTS on."""
    monkeypatch.setitem(connection.settings_dict, "ATOMIC_REQUESTS", True)


# Without the test-wide transaction, as in production: what a request commits stays.
in_production_transactions = pytest.mark.django_db(transaction=True)


# --- Time, hashers, failures, signals -------------------------------------------------


class Clock:
    """A controllable ``timezone.now`` so tests move time instead of sleeping."""

    def __init__(self) -> None:
        self.now = real_now()

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock(monkeypatch) -> Clock:
    frozen = Clock()
    monkeypatch.setattr(timezone, "now", frozen)
    return frozen


@pytest.fixture
def hasher_calls():
    """Count every password hash computed (checks and dummy hashes alike)."""
    with mock.patch.object(
        MD5PasswordHasher, "encode", autospec=True, side_effect=MD5PasswordHasher.encode
    ) as spy:
        yield spy


def failing(error: Exception) -> Callable:
    """A stand-in for a cache or database call whose backend is down."""

    def fail(*args, **kwargs):
        raise error

    return fail


@contextmanager
def receiving(signal: Signal, field: str | None = None) -> Iterator[list]:
    """What ``signal`` sends inside the block: each send's ``field``, or all its arguments."""
    received: list = []

    def receiver(**kwargs):
        received.append(kwargs if field is None else kwargs[field])

    signal.connect(receiver, weak=False)
    try:
        yield received
    finally:
        signal.disconnect(receiver)


# --- Users ----------------------------------------------------------------------------


def create_user(username: str, password: str | None = PASSWORD, **fields):
    """A user of the default user model (``password=None``: an unusable password)."""
    return get_user_model().objects.create_user(username=username, password=password, **fields)


@pytest.fixture
def user(db):
    return create_user("alice", email="alice@example.com")


@pytest.fixture
def other_user(db):
    return create_user("bob", email="bob@example.com")


@pytest.fixture
def inactive_user(db):
    return create_user("carol", email="carol@example.com", is_active=False)


@pytest.fixture
def unusable_user(db):
    return create_user("dave", password=None, email="dave@example.com")


@pytest.fixture
def alice_mfa(user):
    """Alice with an authenticator app set up and confirmed, and her recovery codes."""
    # Imported here: tests/mfa_support.py imports this module.
    from .mfa_support import enable_totp

    return enable_totp(user)


@pytest.fixture
def app_scopes(settings):
    """The test app's scopes on top of the test settings."""
    settings.TESSERA = {**settings.TESSERA, "SCOPES": SCOPES}


@pytest.fixture
def seeded(db, app_scopes) -> dict:
    """The test app's roles and one user in each, by username."""
    seed_roles_and_users(PASSWORD)
    return {user.username: user for user in get_user_model().objects.all()}


# --- Clients and credentials ----------------------------------------------------------


@pytest.fixture
def api() -> APIClient:
    return APIClient()


@pytest.fixture
def browser() -> APIClient:
    """A client that enforces CSRF like a real browser-facing deployment."""
    return APIClient(enforce_csrf_checks=True)


def with_csrf(client: APIClient) -> dict:
    """Plant a CSRF cookie in ``client``; returns the header that matches it."""
    token = _get_new_csrf_string()
    client.cookies["csrftoken"] = token
    return {"HTTP_X_CSRFTOKEN": token}


def auth_header(token: str | None, keyword: str = "Token") -> dict:
    """The Authorization header carrying ``token``; none at all for an anonymous caller."""
    return {"HTTP_AUTHORIZATION": f"{keyword} {token}"} if token else {}


def get_protected(client: APIClient, token: str | None, keyword: str = "Token"):
    return client.get(PROTECTED_URL, **auth_header(token, keyword))


def post_login(
    client: APIClient,
    username: str = "alice",
    password: str = PASSWORD,
    *,
    path: str = LOGIN_URL,
    **fields,
):
    """POST a username, a password and any other ``fields`` (device_name…) to a login
    endpoint; the response, whatever it is."""
    body = {"username": username, "password": password, **fields}
    return client.post(path, body, format="json")


def log_in(
    client: APIClient,
    username: str = "alice",
    password: str = PASSWORD,
    *,
    path: str = LOGIN_URL,
    **fields,
) -> dict:
    """Log in through ``path``; the body of the answer, which must be a success."""
    response = post_login(client, username, password, path=path, **fields)
    assert response.status_code == 200, response.content
    return response.json()


@pytest.fixture
def login(api) -> Callable[..., dict]:
    """Log in through login/; returns the response JSON."""
    return partial(log_in, api)


@pytest.fixture
def jwt_login(api, user) -> Callable[..., dict]:
    """Alice's JWT login through jwt/; returns the response JSON (access, refresh, user)."""
    return partial(log_in, api, path=JWT_URL)


# --- External issuers (tests/fake_issuer.py) ---------------------------------------------

EXTERNAL_AUDIENCE = "https://api.example.test"


@pytest.fixture
def issuer():
    fake = FakeIssuer().start()
    yield fake
    fake.stop()


@pytest.fixture
def other_issuer():
    fake = FakeIssuer("ES256").start()
    yield fake
    fake.stop()


@pytest.fixture
def trust(settings):
    """``trust(issuer, **entry)`` makes the issuer trusted (alone unless ``also`` is given)."""

    def configure(*fakes, **entry):
        entries = [
            {
                "issuer": fake.url,
                "audience": EXTERNAL_AUDIENCE,
                "algorithms": [fake.algorithm],
                "user": "link",
                **entry,
            }
            for fake in fakes
        ]
        settings.TESSERA = {**settings.TESSERA, "TRUSTED_ISSUERS": entries, "SCOPES": SCOPES}

    return configure


@pytest.fixture
def social(settings):
    """``social(fake, name="acme", kind="oidc", **entry)`` configures one provider more."""

    def configure(fake: FakeIssuer, name: str = "acme", kind: str = "oidc", **entry):
        providers = dict(settings.TESSERA.get("SOCIAL_PROVIDERS", {}))
        providers[name] = social_support.provider_entry(fake, kind, **entry)
        settings.TESSERA = {**settings.TESSERA, "SOCIAL_PROVIDERS": providers}

    return configure


NEW_ACCOUNT = {"username": "abc", "password": PASSWORD, "email": "abc@example.com"}


def register(client: APIClient, **fields):
    """Sign up through register/ with a new account's fields, any of them replaced."""
    return client.post(REGISTER_URL, {**NEW_ACCOUNT, **fields}, format="json")
