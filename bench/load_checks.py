"""What the load scenario expects of every answer, without locust.

bench/locustfile.py sends the requests and bench/load.py runs it; this module says who
the simulated clients are and whether each answer is right, so the test suite can check
the judgement without a server. A checker returns None for a right answer, otherwise why
it is wrong. A 5xx is always wrong, and is told apart from the other wrong answers.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchsite.hashers import BURST_PASSWORD_PREFIX

# Each simulated client logs in to its own few accounts in turn, so an account sees a
# login every few journeys: well under the per-account rate, which the stuffing burst
# against VICTIM must meet.
ACCOUNTS_PER_CLIENT = 6
PASSWORD = "load-password-0123456789"
# Protected calls between a login and its logout (for JWTs, with each access token).
CALLS_PER_LOGIN = 3
# A client's pause between two requests, drawn uniformly: a person's pace, which keeps the
# server short of saturation, so latencies measure the work rather than a queue.
PAUSE_SECONDS = (2.0, 4.0)
# The fewest pauses between two logins of a client: the token journey's, one before each
# of its calls after the login, and locust's before the next journey.
PAUSES_PER_JOURNEY = 2 * CALLS_PER_LOGIN + 3
VICTIM = "load-victim"
# Codes of a login refused before its password is checked: the attempt throttles
# (`throttled`) and failure-based lockout (`locked_out`).
REFUSED_LOGIN_CODES = frozenset({"throttled", "locked_out"})
# The answers a burst attempt may get, by kind.
RAN_HASHER, REFUSED = "ran the hasher", "refused"


def account(client: int, turn: int) -> str:
    """The account a simulated client logs in to on its ``turn``-th login."""
    return f"load-{client}-{turn % ACCOUNTS_PER_CLIENT}"


def accounts(clients: int) -> list[str]:
    return [
        account(client, turn) for client in range(clients) for turn in range(ACCOUNTS_PER_CLIENT)
    ]


def client_address(client: int) -> str:
    """The address a client's requests come from (sent as X-Forwarded-For): one each,
    in 10.0.0.0/8, so no two clients share a per-IP counter."""
    return f"10.{client // 65536 % 256}.{client // 256 % 256}.{client % 256}"


def burst_address(attempt: int) -> str:
    """A new address for each attempt of the burst, outside the clients' range: the
    attack is spread over many machines, and only the per-account limit can stop it."""
    return f"198.{18 + attempt // 65536 % 2}.{attempt // 256 % 256}.{attempt % 256}"


def burst_password(attempt: int) -> str:
    """A wrong password the server's counting hasher recognises as the burst's."""
    return f"{BURST_PASSWORD_PREFIX}{attempt}"


class WrongAnswer(Exception):
    """An answer that is not the one expected; ``server_error`` for a 5xx."""

    def __init__(self, message: str, *, server_error: bool = False) -> None:
        super().__init__(message)
        self.server_error = server_error


def json_or_none(body: bytes | str) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


def parse(status: int, body: bytes | str, expected_status: int) -> Any:
    """The JSON body of an answer that has ``expected_status``, or WrongAnswer."""
    if status >= 500:
        raise WrongAnswer(f"{status} (server error)", server_error=True)
    payload = json_or_none(body)
    if status != expected_status:
        # The error's code rather than the whole body, so that locust counts alike
        # failures as one kind.
        code = payload.get("code") if isinstance(payload, dict) else None
        shown = f"{status} {code}" if isinstance(code, str) else str(status)
        raise WrongAnswer(f"{shown}, expected {expected_status}")
    if status == 204:
        return None
    if payload is None:
        raise WrongAnswer(f"{status} with a body that is not JSON: {body[:100]!r}")
    return payload


def field(payload: Any, *path: str) -> Any:
    for name in path:
        if not isinstance(payload, dict) or name not in payload:
            raise WrongAnswer(f"no {'.'.join(path)} in {str(payload)[:200]}")
        payload = payload[name]
    return payload


def check_user(payload: Any, username: str, *path: str) -> None:
    shown = field(payload, *path, "username")
    if shown != username:
        raise WrongAnswer(f"answered for {shown!r}, not {username!r}")


def token_login(status: int, body: bytes | str, username: str) -> str:
    """``POST login/``: 200 with a token for ``username``; the Authorization header."""
    payload = parse(status, body, 200)
    check_user(payload, username, "user")
    return f"Token {field(payload, 'token')}"


def jwt_pair(status: int, body: bytes | str, username: str | None = None) -> tuple[str, str]:
    """``POST jwt/`` (with the user) or ``jwt/refresh/``: 200 with a pair; the access
    token's Authorization header and the refresh token."""
    payload = parse(status, body, 200)
    if username is not None:
        check_user(payload, username, "user")
    return f"Bearer {field(payload, 'access')}", field(payload, "refresh")


def profile(status: int, body: bytes | str, username: str) -> None:
    """A protected endpoint with a valid credential: 200, and it is the right user."""
    check_user(parse(status, body, 200), username)


def session_list(status: int, body: bytes | str) -> None:
    """``GET sessions/``: 200 with exactly one session marked as the current one."""
    payload = parse(status, body, 200)
    if not isinstance(payload, list):
        raise WrongAnswer(f"not a list: {str(payload)[:200]}")
    current = [row for row in payload if isinstance(row, dict) and row.get("current") is True]
    if len(current) != 1:
        raise WrongAnswer(f"{len(current)} sessions marked current")


def logged_out(status: int, body: bytes | str) -> None:
    """``POST logout/``: 204."""
    parse(status, body, 204)


def refused(status: int, body: bytes | str) -> None:
    """A credential after its session's logout: 401."""
    parse(status, body, 401)


def burst_attempt(status: int, body: bytes | str) -> str:
    """One wrong password of the burst: :data:`RAN_HASHER` for 401
    ``invalid_credentials`` (the password was checked), :data:`REFUSED` for 429
    ``throttled`` or ``locked_out`` (it was not); any other answer is wrong, a 200
    above all."""
    if status == 429:
        code = field(parse(status, body, 429), "code")
        if code not in REFUSED_LOGIN_CODES:
            raise WrongAnswer(f"429 with code {code!r}")
        return REFUSED
    code = field(parse(status, body, 401), "code")
    if code != "invalid_credentials":
        raise WrongAnswer(f"401 with code {code!r}")
    return RAN_HASHER


def gcra_allowance(started: float, ended: float, count: int, period_seconds: int) -> int:
    """The most a sliding (GCRA) limit of ``count`` per ``period_seconds`` lets through
    between ``started`` and ``ended``: its burst, plus one per emission interval elapsed."""
    return count + math.floor((ended - started) / (period_seconds / count))


@dataclass(frozen=True)
class EndpointStats:
    name: str
    requests: int
    failures: int
    requests_per_second: float
    p50_ms: float
    p99_ms: float
    max_ms: float


def read_stats(path: Path) -> list[EndpointStats]:
    """Locust's ``<prefix>_stats.csv``, one row per request name, then the total."""
    with path.open(newline="") as handle:
        return [
            EndpointStats(
                row["Name"] if row["Type"] else "All requests",
                int(row["Request Count"]),
                int(row["Failure Count"]),
                float(row["Requests/s"]),
                float(row["50%"]) if row["50%"] != "N/A" else math.nan,
                float(row["99%"]) if row["99%"] != "N/A" else math.nan,
                float(row["Max Response Time"]),
            )
            for row in csv.DictReader(handle)
        ]
