"""PostgreSQL, then Redis, stopped under a running gunicorn server, and started again.

Every operation of the API schema (see :mod:`tests.realservers.endpoints`) is sent a
plausible request in five rounds, each with users and credentials of its own made while
everything ran: with both services up (the baseline), with PostgreSQL down, once it is
back, with Redis down, once it is back. While a service is down each answer must be its
baseline or a 503 with ``Retry-After``: never a 500, never a 401 or another error that
blames the client, and never a 2xx for what needs the database, unless it can be served
from what is cached. Once the service is back every operation answers as in the baseline,
with the same gunicorn workers (a client retrying a 503 gets there within seconds).
"""

from __future__ import annotations

import pytest

from .realservers.endpoints import Kit, Operation, operations, retried, send
from .realservers.reporting import site_for_tests

pytestmark = pytest.mark.realservers

ROUNDS = ("baseline", "database down", "database back", "redis down", "redis back")
# What answers as usual with the database down: nothing stored is needed (keys, CSRF, the
# schema), or the session of a warm credential is read from the cache.
SERVED_WITHOUT_DATABASE = {
    "GET /api/auth/csrf/",
    "GET /api/auth/jwt/jwks/",
    "POST /api/auth/jwt/verify/",
    "GET /api/protected/",
}


@pytest.fixture(scope="module")
def site(request):
    with site_for_tests(request.config, ("A",)) as running:
        yield running


def wrong_answer(operation: Operation, baseline, answer, *, database_down: bool) -> str | None:
    """Why an answer given while a service is down is wrong, or None."""
    if answer.status == 503:
        return None if "retry-after" in answer.headers else "a 503 without Retry-After"
    if answer.status != baseline.status:
        return f"{answer!r}, not 503 (baseline {baseline.status})"
    if database_down and answer.status < 300 and operation.name not in SERVED_WITHOUT_DATABASE:
        return f"{answer!r} with the database down"
    return None


def test_every_operation_answers_503_while_a_service_is_down_and_recovers(site):
    server = site.servers["A"]
    walked = operations()
    workers = server.workers
    # The same worker serves an operation in every round: its connections are the ones
    # the outage broke.
    calls = {
        round_: {
            operation: Kit(site, server, f"fault-{r}-{n}").prepare(operation)
            for n, operation in enumerate(walked)
        }
        for r, round_ in enumerate(ROUNDS)
    }

    def worker(n: int) -> int:
        return workers[n % len(workers)]

    seen: dict[str, dict[Operation, object]] = {}

    def walk(round_: str, answer=send) -> dict[Operation, object]:
        seen[round_] = {
            operation: answer(server, call, worker(n))
            for n, (operation, call) in enumerate(calls[round_].items())
        }
        return seen[round_]

    baseline = walk("baseline")
    broken = {op.name: b for op, b in baseline.items() if b.status >= 500}
    assert not broken, f"5xx with every service up: {broken}"

    problems: list[str] = []

    def check_outage(round_: str, *, database_down: bool) -> None:
        for operation, answer in walk(round_).items():
            why = wrong_answer(operation, baseline[operation], answer, database_down=database_down)
            if why:
                problems.append(f"{round_}: {operation.name}: {why}")

    def check_recovery(round_: str) -> None:
        for operation, answer in walk(round_, retried).items():
            if answer.status != baseline[operation].status:
                problems.append(
                    f"{round_}: {operation.name}: {answer!r}, baseline {baseline[operation]!r}"
                )

    site.postgres.stop()
    try:
        check_outage("database down", database_down=True)
    finally:
        site.postgres.start_again()
    check_recovery("database back")

    site.redis.shutdown(save=False)
    try:
        check_outage("redis down", database_down=False)
    finally:
        site.redis.start()
    check_recovery("redis back")

    table = "\n".join(
        f"{op.name:55} " + " ".join(f"{seen[r][op].status:>4}" for r in ROUNDS) for op in walked
    )
    assert not problems, "\n".join(problems) + "\n\n" + table
    # Recovered by the same processes: no worker was restarted, none replaced.
    assert site.apps["A"].process.poll() is None
    assert {answer.worker for answer in seen["redis back"].values()} == set(workers)
    # The walk met every Tessera endpoint of the schema, not only those it has requests for.
    assert {op.path for op in walked} >= {"/api/auth/login/", "/api/auth/sessions/{session_id}/"}
