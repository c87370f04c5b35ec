"""An issuer's keys when the issuer is slow, trickles, hangs, answers too much, redirects,
or is flooded with made-up kids: no request waits on another's fetch, and none on a
fetch past its deadline."""

from __future__ import annotations

import functools
import threading
import time
import uuid
from datetime import timedelta

import jwt as pyjwt
import pytest

from tessera.conf import tessera_settings
from tessera.services import issuer_keys
from tessera.tokens import external

from .external_support import assert_refused, get, linked, urlpatterns  # noqa: F401
from .fake_issuer import MOVED_PATH, FakeIssuer

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]

# Short, so a test that waits for a deadline waits this long; far above what a request
# on this machine takes, so "answered at once" is clearly not "answered at the deadline".
DEADLINE = timedelta(seconds=0.6)
# Against a fetch held for the whole default deadline (EXTERNAL_JWKS_TIMEOUT, 5 s): a
# request that waited for it would take 5 s; one that did not takes milliseconds, and
# well under this even on a loaded CI machine.
AT_ONCE = 2.0  # seconds


@pytest.fixture
def short_deadline(settings):
    settings.TESSERA = {**settings.TESSERA, "EXTERNAL_JWKS_TIMEOUT": DEADLINE}


def held_keys(fake) -> issuer_keys.IssuerKeys:
    return issuer_keys.issuer_keys(external.trusted_issuers()[fake.url])


def timed(call):
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


def in_thread(call) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run():
        try:
            outcome.append(call())
        except Exception as exc:  # collected for the test to inspect
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


@functools.cache
def stranger_key():
    return FakeIssuer().private_key()


def made_up_kid_token(fake, **claims) -> str:
    return pyjwt.encode(
        fake.claims(**claims), stranger_key(), "RS256", headers={"kid": uuid.uuid4().hex}
    )


def test_a_trickling_issuer_is_cut_off_at_the_total_deadline(api, issuer, trust, short_deadline):
    trust(issuer, jwks_uri=issuer.url + "/keys")
    linked(issuer)
    # A byte every 50 ms never trips a per-read timeout of 0.6 s; the whole answer would
    # take a minute and more.
    issuer.trickle = 0.05
    response, elapsed = timed(lambda: get(api, issuer.token()))
    assert response.status_code == 503
    assert response.json()["code"] == "issuer_unavailable"
    assert response["Retry-After"]
    assert DEADLINE.total_seconds() * 0.9 <= elapsed < DEADLINE.total_seconds() + 1.5
    assert not held_keys(issuer).keys


def test_the_deadline_covers_discovery_and_keys_together(api, issuer, trust, short_deadline):
    trust(issuer)  # discovery first, then the key set: one deadline for both
    linked(issuer)
    issuer.trickle = 0.01  # each document alone would take about half the deadline and more
    response, elapsed = timed(lambda: get(api, issuer.token()))
    assert response.status_code == 503
    assert elapsed < DEADLINE.total_seconds() + 1.5


def test_while_one_thread_refreshes_the_others_use_the_keys_held(
    api, issuer, trust, settings, clock
):
    trust(issuer)
    linked(issuer)
    assert get(api, issuer.token()).status_code == 200
    clock.advance(hours=2)  # the keys are stale: the next request refreshes them
    issuer.hold()
    kid = issuer.keys[-1][0]
    refresher, outcome = in_thread(lambda: held_keys(issuer).key(kid))
    assert issuer.arrived.wait(timeout=10)
    try:
        token = issuer.token(iat=int(clock.now.timestamp()), exp=int(clock.now.timestamp()) + 300)
        response, elapsed = timed(lambda: get(api, token))
        assert response.status_code == 200
        assert elapsed < AT_ONCE
        # A kid not among the keys held: refused at once, not after the fetch.
        forged = pyjwt.encode(
            issuer.claims(iat=int(clock.now.timestamp()), exp=int(clock.now.timestamp()) + 300),
            stranger_key(),
            "RS256",
            headers={"kid": "rotated-meanwhile"},
        )
        response, elapsed = timed(lambda: get(api, forged))
        assert_refused(response)
        assert elapsed < AT_ONCE
    finally:
        issuer.release()
    refresher.join(timeout=10)
    assert outcome and outcome[0] is not None  # the refresher got its key
    assert issuer.key_fetches() == 2


def test_the_first_fetch_is_waited_for_no_longer_than_its_deadline(
    api, issuer, trust, short_deadline
):
    trust(issuer, jwks_uri=issuer.url + "/keys")
    linked(issuer)
    issuer.hold()  # never answers within the test
    kid = issuer.keys[-1][0]
    try:
        fetcher, outcome = in_thread(lambda: held_keys(issuer).key(kid))
        assert issuer.arrived.wait(timeout=10)
        # No key held at all: this request waits for the fetch under way, then gives up.
        response, elapsed = timed(lambda: get(api, issuer.token()))
        assert response.status_code == 503
        assert response.json()["code"] == "issuer_unavailable"
        assert response["Retry-After"]
        assert elapsed < DEADLINE.total_seconds() + 1.0
        fetcher.join(timeout=DEADLINE.total_seconds() + 2)
        assert not fetcher.is_alive()  # the deadline cut the hanging connection
        assert isinstance(outcome[0], issuer_keys.IssuerUnreachable)
    finally:
        issuer.release()
    assert issuer.key_fetches() == 1  # the waiting request did not fetch again


def test_an_issuer_that_answers_too_much_is_refused(api, issuer, trust, monkeypatch):
    trust(issuer, jwks_uri=issuer.url + "/keys")
    linked(issuer)
    published = issuer.jwks()
    padded = {**published, "padding": "x" * (issuer_keys.MAX_DOCUMENT_BYTES + 1)}
    monkeypatch.setattr(issuer, "jwks", lambda: padded)
    assert get(api, issuer.token()).status_code == 503
    monkeypatch.setattr(issuer, "jwks", lambda: published)
    held_keys(issuer).retry_at = float("-inf")
    assert get(api, issuer.token()).status_code == 200


def test_a_redirect_is_not_followed(api, issuer, trust):
    trust(issuer, jwks_uri=issuer.url + MOVED_PATH)
    linked(issuer)
    assert get(api, issuer.token()).status_code == 503
    assert issuer.requests == [MOVED_PATH]


def test_made_up_kids_cost_no_lock_and_no_cache_read(api, issuer, trust, monkeypatch, clock):
    trust(issuer)
    linked(issuer)
    assert get(api, issuer.token()).status_code == 200
    held = held_keys(issuer)
    shared_reads, acquisitions = [], []
    real_shared = issuer_keys._shared
    monkeypatch.setattr(
        issuer_keys, "_shared", lambda name: shared_reads.append(name) or real_shared(name)
    )

    class CountingLock:
        def __init__(self, lock):
            self.lock = lock

        def acquire(self, *args, **kwargs):
            acquisitions.append(args or kwargs)
            return self.lock.acquire(*args, **kwargs)

        def release(self):
            self.lock.release()

    held.lock = CountingLock(held.lock)
    state_before = dict(vars(held))
    for _ in range(200):
        assert_refused(get(api, made_up_kid_token(issuer)))
    # The first made-up kid was worth one refresh; the other 199 were refused from memory.
    assert len(acquisitions) == 1
    assert len(shared_reads) == 1
    assert issuer.key_fetches() == 2
    # Nothing is remembered per kid: the process holds what it held before.
    assert vars(held).keys() == state_before.keys()
    assert held.keys.keys() == state_before["keys"].keys()
    # Once the interval has passed, a kid not held may refresh the keys again, once.
    clock.advance(seconds=tessera_settings.EXTERNAL_JWKS_REFRESH_INTERVAL.total_seconds() + 1)
    moment = int(clock.now.timestamp())
    token = made_up_kid_token(issuer, iat=moment, exp=moment + 300)
    for _ in range(3):
        assert_refused(get(api, token))
    assert issuer.key_fetches() == 3


def test_stale_keys_and_the_issuer_down_cost_one_failed_fetch_per_interval(
    api, issuer, trust, monkeypatch, clock
):
    trust(issuer)
    linked(issuer)
    assert get(api, issuer.token()).status_code == 200
    clock.advance(hours=2)
    issuer.down = True
    shared_reads = []
    real_shared = issuer_keys._shared
    monkeypatch.setattr(
        issuer_keys, "_shared", lambda name: shared_reads.append(name) or real_shared(name)
    )
    moment = int(clock.now.timestamp())
    token = issuer.token(iat=moment, exp=moment + 300)
    for _ in range(20):
        assert get(api, token).status_code == 200
    assert issuer.key_fetches() == 2
    assert len(shared_reads) == 1
