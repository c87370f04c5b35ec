"""What the real-server tests do over HTTP: log in, warm the servers up, revoke, look.

An :class:`Account` is one user of the site with connections of its own to every
server, so several accounts can run trials in parallel threads.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from tests.conftest import PASSWORD

from .client import Response, Server
from .mailbox import plain_text, read, received
from .services import Site

PROTECTED = "/api/protected/"
LOGIN = "/api/auth/login/"
JWT = "/api/auth/jwt/"
JWT_REFRESH = "/api/auth/jwt/refresh/"
LOGOUT = "/api/auth/logout/"
LOGOUT_ALL = "/api/auth/logout/all/"
SESSIONS = "/api/auth/sessions/"
TOKENS = "/api/auth/tokens/"
PASSWORD_CHANGE = "/api/auth/password/change/"
PASSWORD_RESET = "/api/auth/password/reset/"
PASSWORD_RESET_CONFIRM = "/api/auth/password/reset/confirm/"
MAIL_TIMEOUT = 10.0
RESET_LINK = re.compile(r"/reset-password/(?P<uid>[^/\s]+)/(?P<token>[^/\s]+)")


class UnexpectedAnswer(Exception):
    """A step of a trial got an answer other than the one it needs to go on."""


def expect(response: Response, *statuses: int) -> Response:
    if response.status not in statuses:
        raise UnexpectedAnswer(f"expected {statuses}, got {response!r}")
    return response


@dataclass(frozen=True)
class Credential:
    """A bearer credential and the session it belongs to (with its refresh token, for JWT)."""

    token: str
    session_id: str
    refresh: str | None = None


def jwt_session_id(token: str) -> str:
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return claims["sid"]


class Account:
    """One user of the site, and connections of its own to each server."""

    def __init__(self, site: Site, name: str, **fields) -> None:
        self.site = site
        self.name = name
        self.servers = {name: server.fresh() for name, server in site.servers.items()}
        self._passwords = itertools.count(1)
        self.new_user(name, **fields)

    def new_user(self, username: str, **fields) -> None:
        """Go on as a new user of that name (created now, with the suite's password)."""
        self.username = username
        self.email = f"{username}@example.com"
        self.password = PASSWORD
        self.site.control(
            "create_user", username=username, password=self.password, email=self.email, **fields
        )

    def close(self) -> None:
        for server in self.servers.values():
            server.close()

    @property
    def a(self) -> Server:
        return self.servers["A"]

    @property
    def b(self) -> Server:
        return self.servers["B"]

    def next_password(self) -> str:
        return f"{PASSWORD}-{next(self._passwords)}"

    # Credentials

    def login(self, server: Server) -> Credential:
        body = {"username": self.username, "password": self.password}
        answer = expect(server.request("POST", LOGIN, body=body), 200).json()
        return Credential(answer["token"], answer["session"]["id"])

    def jwt_login(self, server: Server) -> Credential:
        body = {"username": self.username, "password": self.password}
        answer = expect(server.request("POST", JWT, body=body), 200).json()
        return Credential(answer["access"], jwt_session_id(answer["access"]), answer["refresh"])

    def personal_token(self, server: Server, login: Credential) -> Credential:
        body = {"name": "script", "scopes": []}
        answer = expect(server.request("POST", TOKENS, token=login.token, body=body), 201).json()
        return Credential(answer["token"], answer["id"])

    def rotate(self, server: Server, credential: Credential) -> Credential:
        body = {"refresh": credential.refresh}
        answer = expect(server.request("POST", JWT_REFRESH, body=body), 200).json()
        return Credential(answer["access"], credential.session_id, answer["refresh"])

    def reset_link(self, server: Server) -> dict[str, str]:
        """Ask ``server`` for a reset e-mail; the uid and token of the link it sent."""
        sent = len(received(self.site.mailbox, self.email))
        expect(server.request("POST", PASSWORD_RESET, body={"email": self.email}), 202)
        # The e-mail is sent once the response has been written: it may still be on its way.
        deadline = time.monotonic() + MAIL_TIMEOUT
        while time.monotonic() < deadline:
            for path in reversed(received(self.site.mailbox, self.email)[sent:]):
                if link := RESET_LINK.search(plain_text(read(path))):
                    return link.groupdict()
            time.sleep(0.01)
        raise UnexpectedAnswer(f"no reset link was sent to {self.email}")

    # Use

    def warm(self, server: Server, *tokens: str, path: str = PROTECTED, status: int = 200):
        """Have each token served by one worker of ``server``, then by every worker.

        The first request puts the session in the shared cache; from the second one on,
        each worker reads it from there, and keeps whatever a process keeps of it.
        """
        first = server.workers[0]
        for token in tokens:
            expect(server.request("GET", path, token=token, worker=first), status)
            for response in server.on_each_worker("GET", path, token=token).values():
                expect(response, status)

    def wrong_answers(
        self, server: Server, token: str, *, path: str = PROTECTED, status: int = 401
    ) -> list[str]:
        """Each worker of ``server`` asked once: the answers that are not ``status``."""
        answers = server.on_each_worker("GET", path, token=token)
        return [
            f"{server.name} worker {pid}: {response!r}, not {status}"
            for pid, response in answers.items()
            if response.status != status
        ]

    def accepted_anywhere(self, token: str, *, path: str = PROTECTED) -> list[str]:
        """Every worker of every server asked once: the answers other than a 401."""
        return [
            problem
            for server in self.servers.values()
            for problem in self.wrong_answers(server, token, path=path)
        ]


def open_accounts(site: Site, name: str, count: int, **fields) -> list[Account]:
    """``count`` accounts whose users are named after ``name`` (a test's, say)."""
    base = re.sub(r"\W+", "-", name)
    return [Account(site, f"{base}-{number}", **fields) for number in range(count)]


def assert_no_wrong_answers(problems: list[str]) -> None:
    assert not problems, f"{len(problems)} wrong answers, the first: {problems[:10]}"


Trial = Callable[[Account, int], Iterable[str]]


def run_trials(accounts: list[Account], trial: Trial, count: int) -> list[str]:
    """``count`` trials shared by the accounts, each account in a thread of its own.

    Each trial returns the wrong answers it saw (a stale acceptance, say); an exception
    means a step could not go on, and stops the run.
    """
    share = -(-count // len(accounts))

    def run(account: Account) -> list[str]:
        return [
            f"trial {number}: {problem}"
            for number in range(share)
            for problem in trial(account, number)
        ]

    with ThreadPoolExecutor(len(accounts)) as pool:
        return [problem for problems in pool.map(run, accounts) for problem in problems]
