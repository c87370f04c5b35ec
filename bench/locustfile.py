"""The load scenario: simulated clients and a credential-stuffing burst, for locust.

Run by bench/load.py, which creates the accounts, starts the server and reads the
results (bench/README.md). Each :class:`Client` logs in, calls protected endpoints and
logs out, in turn with an opaque token and with a JWT pair it refreshes; every answer
is checked (bench/load_checks.py) and a wrong one is a locust failure. The
:class:`StuffingBurst` users, together, send BURST_ATTEMPTS wrong passwords for one
account, each from a new address, BURST_DELAY seconds into the run. What the burst
users saw, and how many logins the clients sent, is written as JSON to the file
LOAD_SUMMARY names when the run stops.
"""

from __future__ import annotations

import itertools
import json
import os
import time
from collections import Counter
from contextlib import contextmanager

import gevent
import load_checks as checks
from locust import FastHttpUser, between, events, task
from locust.exception import StopUser

CLIENTS = int(os.environ.get("LOAD_CLIENTS", "200"))
BURST_USERS = int(os.environ.get("LOAD_BURST_USERS", "20"))
BURST_ATTEMPTS = int(os.environ.get("LOAD_BURST_ATTEMPTS", "300"))
BURST_DELAY = float(os.environ.get("LOAD_BURST_DELAY", "20"))

client_numbers = itertools.count()
burst_attempts = itertools.count()
burst = {"answers": Counter(), "wrong": [], "started": None, "ended": None}
# Logins sent by the clients, answered or not: the run stops with some in flight, which
# the server may still serve. (Users are greenlets of one thread: no lock is needed.)
sent = Counter()
test_started = time.time()


@events.test_start.add_listener
def remember_start(**_kwargs) -> None:
    global test_started
    test_started = time.time()


@events.quitting.add_listener
def write_summary(**_kwargs) -> None:
    path = os.environ.get("LOAD_SUMMARY")
    if path:
        with open(path, "w") as handle:
            summary = {**burst, "answers": dict(burst["answers"]), "logins_sent": sent["logins"]}
            json.dump(summary, handle)


@contextmanager
def checked(response_context):
    """The response, marked failed (with why) when its checker raises WrongAnswer."""
    with response_context as response:
        try:
            yield response
        except checks.WrongAnswer as wrong:
            response.failure(str(wrong))
        else:
            response.success()


class Client(FastHttpUser):
    """One device of a person: its own address, its own few accounts."""

    weight = 1
    wait_time = between(*checks.PAUSE_SECONDS)

    def on_start(self) -> None:
        self.number = next(client_numbers)
        if self.number >= CLIENTS:
            raise StopUser()
        self.address = checks.client_address(self.number)
        self.logins = itertools.count()
        # Half the clients start with each journey, so that neither kind has the run's
        # start (every client logging in at once) or its end to itself.
        journeys = (self.token_journey, self.jwt_journey)
        self.journeys = itertools.cycle(journeys[self.number % 2 :] + journeys[: self.number % 2])

    def send(self, method: str, path: str, name: str, authorization: str | None = None, **kw):
        headers = {"X-Forwarded-For": self.address}
        if authorization:
            headers["Authorization"] = authorization
        return checked(
            self.client.request(method, path, name=name, headers=headers, catch_response=True, **kw)
        )

    def credentials(self) -> tuple[str, dict[str, str]]:
        """The next account's, for a login about to be sent."""
        sent["logins"] += 1
        username = checks.account(self.number, next(self.logins))
        return username, {"username": username, "password": checks.PASSWORD}

    @task
    def journey(self) -> None:
        next(self.journeys)()

    def token_journey(self) -> None:
        username, body = self.credentials()
        header = None
        with self.send("POST", "/auth/login/", "POST login/", json=body) as r:
            header = checks.token_login(r.status_code, r.content, username)
        if header is None:
            return
        for _ in range(checks.CALLS_PER_LOGIN):
            self.wait()
            with self.send("GET", "/auth/me/", "GET me/ (token)", header) as r:
                checks.profile(r.status_code, r.content, username)
            self.wait()
            with self.send("GET", "/auth/sessions/", "GET sessions/ (token)", header) as r:
                checks.session_list(r.status_code, r.content)
        self.wait()
        with self.send("POST", "/auth/logout/", "POST logout/ (token)", header) as r:
            checks.logged_out(r.status_code, r.content)
        self.wait()
        with self.send("GET", "/auth/me/", "GET me/ after logout (token)", header) as r:
            checks.refused(r.status_code, r.content)

    def jwt_journey(self) -> None:
        username, body = self.credentials()
        pair = None
        with self.send("POST", "/auth/jwt/", "POST jwt/", json=body) as r:
            pair = checks.jwt_pair(r.status_code, r.content, username)
        if pair is None:
            return
        self.call_with_access(pair[0], username)
        self.wait()
        refreshed = None
        body = {"refresh": pair[1]}
        with self.send("POST", "/auth/jwt/refresh/", "POST jwt/refresh/", json=body) as r:
            refreshed = checks.jwt_pair(r.status_code, r.content)
        if refreshed is None:
            return
        header, refresh = refreshed
        self.call_with_access(header, username)
        self.wait()
        with self.send("POST", "/auth/logout/", "POST logout/ (JWT)", header) as r:
            checks.logged_out(r.status_code, r.content)
        self.wait()
        with self.send("GET", "/auth/me/", "GET me/ after logout (JWT)", header) as r:
            checks.refused(r.status_code, r.content)
        self.wait()
        body = {"refresh": refresh}
        name = "POST jwt/refresh/ after logout"
        with self.send("POST", "/auth/jwt/refresh/", name, json=body) as r:
            checks.refused(r.status_code, r.content)

    def call_with_access(self, header: str, username: str) -> None:
        for _ in range(checks.CALLS_PER_LOGIN):
            self.wait()
            with self.send("GET", "/auth/me/", "GET me/ (JWT)", header) as r:
                checks.profile(r.status_code, r.content, username)


class StuffingBurst(FastHttpUser):
    """Wrong passwords for one account, as fast as the server answers, each attempt
    from a new address; the users of this class share BURST_ATTEMPTS between them."""

    fixed_count = BURST_USERS

    @task
    def stuff(self) -> None:
        gevent.sleep(max(0.0, test_started + BURST_DELAY - time.time()))
        if burst["started"] is None:
            burst["started"] = time.time()
        while (attempt := next(burst_attempts)) < BURST_ATTEMPTS:
            body = {"username": checks.VICTIM, "password": checks.burst_password(attempt)}
            headers = {"X-Forwarded-For": checks.burst_address(attempt)}
            request = self.client.request(
                "POST", "/auth/login/", name="POST login/ (burst)", headers=headers,
                json=body, catch_response=True,
            )  # fmt: skip
            with checked(request) as r:
                try:
                    burst["answers"][checks.burst_attempt(r.status_code, r.content)] += 1
                except checks.WrongAnswer as wrong:
                    burst["wrong"].append(str(wrong))
                    raise
        burst["ended"] = time.time()
        raise StopUser()
