"""Faults injected into the running site while trials go on in other threads."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tessera.session_cache import KEY_PREFIX
from tessera.tokens import opaque

from .client import Response
from .flows import LOGOUT, LOGOUT_ALL, TOKENS, Account, Credential, expect
from .services import RedisServer

FAULT_TIMEOUT = 60.0
# The ways a credential is revoked over HTTP in the fault tests, taken in turn.
REVOCATIONS = ("logout", "logout-all", "jwt logout", "token deletion")


class Tally:
    """What the trial threads saw: A's answers to revocations, and the faults made."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.answers: Counter = Counter()
        self.faults: Counter = Counter()

    def answered(self, kind: str, status: int) -> None:
        with self._lock:
            self.answers[kind, status] += 1

    def fault(self, name: str, amount: int = 1) -> None:
        with self._lock:
            self.faults[name] += amount

    @property
    def trials(self) -> int:
        with self._lock:
            return sum(self.answers.values())

    def statuses(self) -> set[int]:
        with self._lock:
            return {status for _, status in self.answers}

    def __repr__(self) -> str:
        return f"answers {dict(self.answers)}, faults {dict(self.faults)}"


@contextmanager
def repeated(fault: Callable[[], None], interval: float) -> Iterator[threading.Event]:
    """Run ``fault`` every ``interval`` seconds in a thread while the block runs."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def loop() -> None:
        try:
            while not stop.wait(interval):
                fault()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield stop
    finally:
        stop.set()
        thread.join(timeout=FAULT_TIMEOUT)
    if errors:
        raise errors[0]


def revoke(account: Account, kind: str) -> tuple[list[Credential], Response]:
    """Create credentials on A, have every worker of A and B serve them, revoke on A.

    The credentials that must be refused from then on, and A's answer to the revocation.
    """
    a = account.a
    if kind == "logout":
        revoked = [account.login(a)]
        call = ("POST", LOGOUT, revoked[0].token)
    elif kind == "logout-all":
        revoked = [account.login(a), account.jwt_login(a)]
        call = ("POST", LOGOUT_ALL, revoked[0].token)
    elif kind == "jwt logout":
        revoked = [account.jwt_login(a)]
        call = ("POST", LOGOUT, revoked[0].token)
    else:
        login = account.login(a)
        revoked = [account.personal_token(a, login)]
        call = ("DELETE", f"{TOKENS}{revoked[0].session_id}/", login.token)
    for server in account.servers.values():
        account.warm(server, *(credential.token for credential in revoked))
    method, path, token = call
    return revoked, a.request(method, path, token=token)


def revoked_in_database(account: Account, credential: Credential) -> bool:
    return account.site.control("session_state", session_id=credential.session_id) == "revoked"


def revocation_trial(tally: Tally):
    """A trial that revokes in one of the ways of REVOCATIONS, by its number.

    A 503 is an acceptable answer while the cache fails, but the revocation is then in
    the database already: from that answer on, as from a 204, nobody may accept it.
    """

    def trial(account: Account, number: int) -> list[str]:
        kind = REVOCATIONS[number % len(REVOCATIONS)]
        revoked, answer = revoke(account, kind)
        expect(answer, 204, 503)
        if answer.status == 503:
            assert "retry-after" in answer.headers, answer
        problems = []
        for credential in revoked:
            if answer.status == 503 and not revoked_in_database(account, credential):
                continue
            problems += [f"{kind}: {p}" for p in account.accepted_anywhere(credential.token)]
        tally.answered(kind, answer.status)
        return problems

    return trial


def cached_in(redis: RedisServer, token: str) -> bool:
    """Whether Redis holds an entry for this opaque token's session."""
    pattern = f"*{KEY_PREFIX}{opaque.digest(token)}"
    return any(True for _ in redis.client().scan_iter(match=pattern))
