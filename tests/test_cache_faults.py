"""Redis failing under two gunicorn servers: no revoked credential is ever accepted again.

The site runs on its own Redis and PostgreSQL. Faults hit Redis while revocations go on:
its clients killed (the cache connections, and the invalidation connections of any
process that keeps one), a restart that loses its data, and an outage after which it
comes back with the entries it saved on the way down, revoked sessions among them.
"""

from __future__ import annotations

import threading
import time

import pytest

from .realservers.faults import Tally, cached_in, repeated, revocation_trial
from .realservers.flows import (
    LOGOUT,
    LOGOUT_ALL,
    Account,
    Credential,
    assert_no_wrong_answers,
    open_accounts,
    run_trials,
)
from .realservers.reporting import site_for_tests

pytestmark = pytest.mark.realservers

THREADS = 2
KILL_TRIALS = 120
RESTART_TRIALS = 120
TRIALS_DURING_RESTART = 10
CLEAN_TRIALS = 20
KILL_INTERVAL = 0.02
PROGRESS_TIMEOUT = 60.0


@pytest.fixture(scope="module")
def site(request):
    with site_for_tests(request.config) as running:
        yield running


@pytest.fixture
def redis(site):
    """The site's Redis, running when the test starts and again when it ends."""
    if not site.redis.running:
        site.redis.start()
    yield site.redis
    if not site.redis.running:
        site.redis.forget_data()
        site.redis.start()


@pytest.fixture
def accounts(site, request):
    opened = open_accounts(site, request.node.name, THREADS)
    yield opened
    for account in opened:
        account.close()


def assert_all_work_again(site, accounts: list[Account], redis) -> None:
    """Revocations answer 204 again, and sessions are cached in Redis again."""
    tally = Tally()
    assert_no_wrong_answers(run_trials(accounts, revocation_trial(tally), CLEAN_TRIALS))
    assert tally.statuses() == {204}, tally
    credential = accounts[0].login(accounts[0].a)
    accounts[0].warm(accounts[0].b, credential.token)
    assert cached_in(redis, credential.token)


def killed_mid_run(site, redis, accounts, client_types: tuple[str, ...]) -> Tally:
    """Revocation trials while every client of ``client_types`` is killed, again and again."""
    tally = Tally()

    def kill() -> None:
        for client_type in client_types:
            tally.fault(
                f"{client_type} clients killed", redis.kill_clients(client_type=client_type)
            )

    with repeated(kill, KILL_INTERVAL):
        problems = run_trials(accounts, revocation_trial(tally), KILL_TRIALS)
    assert_no_wrong_answers(problems)
    assert_all_work_again(site, accounts, redis)
    return tally


def test_invalidation_connections_killed_mid_run(site, redis, accounts):
    # The connections a process holds to hear of other processes' writes are pubsub
    # clients; a process that keeps none (every read goes to Redis) loses nothing here.
    killed_mid_run(site, redis, accounts, ("pubsub",))


def test_all_cache_connections_killed_mid_run(site, redis, accounts):
    tally = killed_mid_run(site, redis, accounts, ("normal", "pubsub"))
    assert tally.faults["normal clients killed"] > 0, tally


def test_redis_restarted_without_its_data_mid_run(site, redis, accounts):
    tally = Tally()

    def trials_reach(count: int) -> None:
        deadline = time.monotonic() + PROGRESS_TIMEOUT
        while tally.trials < count and time.monotonic() < deadline:
            time.sleep(0.01)

    def restart() -> None:
        trials_reach(RESTART_TRIALS // 3)
        redis.shutdown(save=False)
        redis.forget_data()
        tally.fault("restarts")
        # Revocations go on against the stopped Redis before it comes back empty.
        trials_reach(RESTART_TRIALS // 3 + TRIALS_DURING_RESTART)
        redis.start()

    fault = threading.Thread(target=restart, daemon=True)
    fault.start()
    problems = run_trials(accounts, revocation_trial(tally), RESTART_TRIALS)
    fault.join(timeout=PROGRESS_TIMEOUT)
    assert_no_wrong_answers(problems)
    assert tally.faults["restarts"] == 1 and redis.running, tally
    assert 503 in tally.statuses(), f"no revocation met the stopped Redis: {tally}"
    assert_all_work_again(site, accounts, redis)


# The outage: Redis goes down with SHUTDOWN SAVE, so what it had (the live entries of the
# sessions about to be revoked) is on disk, and comes back with it.

CREDENTIALS = ("opaque token", "JWT access token", "personal access token")


def credentials_of(account: Account) -> dict[str, Credential]:
    """One credential of each kind, all of one user (the personal token made by the first)."""
    opaque = account.login(account.a)
    return {
        "opaque token": opaque,
        "JWT access token": account.jwt_login(account.a),
        "personal access token": account.personal_token(account.a, opaque),
    }


def probe_b_then_a(account: Account, token: str) -> list[str]:
    """Every worker of B, then of A, asked once: the answers other than a 401.

    B first: it saw nothing of the outage (it served no request meanwhile).
    """
    return [
        problem
        for server in (account.b, account.a)
        for problem in account.wrong_answers(server, token)
    ]


def describe(response) -> str:
    return f"{response!r} Retry-After={response.headers.get('retry-after')}"


def revoke_during_an_outage(site, redis, account, path: str, caller: str, revoked: list):
    """POST ``path`` on A with ``caller`` while Redis is down (SHUTDOWN SAVE), then
    bring Redis back with its data, retry, and look at the ``revoked`` credentials.

    Every credential was served by every worker of A and B first, so the saved data
    holds a live entry for each.
    """
    for server in (account.a, account.b):
        account.warm(server, *(credential.token for credential in revoked))
    worker = account.a.workers[0]

    redis.shutdown(save=True)
    during = account.a.request("POST", path, token=caller, worker=worker)
    redis.start()

    states = {c.session_id: site.control("session_state", session_id=c.session_id) for c in revoked}
    stale = [
        problem
        for credential in revoked
        if states[credential.session_id] == "revoked"
        for problem in probe_b_then_a(account, credential.token)
    ]
    retried = account.a.request("POST", path, token=caller, worker=worker)
    after = [problem for c in revoked for problem in probe_b_then_a(account, c.token)]
    observed = (
        f"during the outage: {describe(during)}; in the database: {sorted(states.values())}; "
        f"accepted once Redis was back: {stale}; retried: {describe(retried)}; "
        f"accepted after the retry: {after}"
    )
    assert during.status in (204, 503), observed
    assert during.status == 204 or "retry-after" in during.headers, observed
    assert not stale, observed
    assert retried.status in (200, 204), observed
    assert not after, observed


@pytest.mark.parametrize("kind", CREDENTIALS)
def test_logout_during_an_outage_is_never_undone(site, redis, accounts, kind):
    account = accounts[0]
    credential = credentials_of(account)[kind]
    revoke_during_an_outage(site, redis, account, LOGOUT, credential.token, [credential])


def test_logout_all_during_an_outage_is_never_undone(site, redis, accounts):
    account = accounts[0]
    credentials = credentials_of(account)
    caller = credentials["opaque token"].token
    revoke_during_an_outage(site, redis, account, LOGOUT_ALL, caller, list(credentials.values()))


def test_deactivation_by_a_shell_during_an_outage(site, redis, accounts):
    account = accounts[0]
    credentials = credentials_of(account)
    for server in (account.a, account.b):
        account.warm(server, *(credential.token for credential in credentials.values()))

    redis.shutdown(save=True)
    shell = site.run_django(
        "shell",
        "-c",
        "from django.contrib.auth import get_user_model\n"
        f"user = get_user_model().objects.get(username={account.username!r})\n"
        "user.is_active = False\n"
        "user.save()\n",
    )
    redis.start()

    assert shell.returncode == 0, shell.stderr
    states = {site.control("session_state", session_id=c.session_id) for c in credentials.values()}
    assert states == {"revoked"}
    accepted = [
        f"{kind}: {problem}"
        for kind, credential in credentials.items()
        for problem in probe_b_then_a(account, credential.token)
    ]
    assert not accepted, "\n".join(accepted)


def test_the_site_works_after_the_outages(site, redis, accounts):
    assert_all_work_again(site, accounts, redis)
