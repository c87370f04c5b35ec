"""Probe the failure lockout of a running demo server, from outside, over HTTP.

    python bench/probes.py http://127.0.0.1:8000

The server must be the demo (``make demo``, or ``manage.py runserver`` in example/ after
``demo_seed``) on a loopback address: each probe speaks from its own loopback source
addresses (127.0.0.2, 127.0.0.3…), so that "address A" and "address B" really differ
and the probes do not share one per-IP budget. Four probes, each printed PASS or FAIL
with what it saw; the exit status is 1 if any failed:

1. seven successful logins within a minute all answer 200 (only failures count);
2. a victim under attack: after five wrong passwords for ``manager`` from address A, her
   login from a known device on address B answers 200 while an unknown device on B
   answers 429 ``locked_out``;
3. the admin's login form is locked after the limit: of 15 wrong passwords for ``staff``
   the first five are checked (each runs the Argon2 hasher, which takes visible time),
   the rest are refused with the lockout's message and no hasher (answers an order of
   magnitude faster), and then the right password is refused too;
4. 30 attempts straddling a minute boundary against the 20/min per-IP limit: at most 20
   pass the throttle (a fixed window would have let all 30 through).

The probes lock ``manager`` and ``staff`` for a while; with a shared store (Redis, or
THROTTLE_BACKEND "database") ``manage.py tessera_unlock manager`` (and ``staff``) lifts
it. With the demo's default LocMemCache the lock lives in the server's process: use the
admin's unlock action or restart the server.
"""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import statistics
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.cookies import SimpleCookie
from urllib.parse import urlencode, urlsplit

LOGIN = "/api/auth/login/"
ADMIN_LOGIN = "/admin/login/"
LOCKED_MESSAGE = "Too many failed login attempts"
MANAGER = ("manager", "manager-demo-pass-1")
STAFF = ("staff", "staff-demo-pass-1")
USER = ("user", "user-demo-pass-1")


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes
    seconds: float

    def json(self) -> dict:
        try:
            return json.loads(self.body)
        except ValueError:
            return {}

    def __str__(self) -> str:
        code = self.json().get("code")
        retry = self.headers.get("retry-after")
        text = f"{self.status} {code}" if code else str(self.status)
        return f"{text} (Retry-After {retry})" if retry else text


@dataclass
class Client:
    """HTTP from one source address, keeping cookies like a browser."""

    host: str
    port: int
    source: str
    cookies: dict[str, str] = field(default_factory=dict)

    def request(self, method: str, path: str, body: bytes | None = None, **headers) -> Answer:
        connection = http.client.HTTPConnection(
            self.host, self.port, timeout=30, source_address=(self.source, 0)
        )
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        started = time.perf_counter()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            payload = response.read()
        finally:
            connection.close()
        seconds = time.perf_counter() - started
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        return Answer(
            response.status, {k.lower(): v for k, v in response.getheaders()}, payload, seconds
        )

    def login(self, username: str, password: str, **fields) -> Answer:
        body = json.dumps({"username": username, "password": password, **fields}).encode()
        return self.request("POST", LOGIN, body, **{"Content-Type": "application/json"})

    def admin_login(self, username: str, password: str) -> Answer:
        if "csrftoken" not in self.cookies:
            self.request("GET", ADMIN_LOGIN)
        form = urlencode(
            {
                "username": username,
                "password": password,
                "csrfmiddlewaretoken": self.cookies["csrftoken"],
                "next": "/admin/",
            }
        ).encode()
        return self.request(
            "POST",
            ADMIN_LOGIN,
            form,
            **{
                "Content-Type": "application/x-www-form-urlencoded",
                "Referer": f"http://{self.host}:{self.port}{ADMIN_LOGIN}",
            },
        )


@dataclass
class Result:
    name: str
    passed: bool
    details: list[str]


def probe_successes(clients) -> Result:
    client = clients()
    answers = [client.login(*USER) for _ in range(7)]
    statuses = [a.status for a in answers]
    return Result(
        "7 successful logins within a minute all answer 200",
        statuses == [200] * 7,
        [f"statuses: {statuses}"],
    )


def probe_victim(clients) -> Result:
    device_address, attacker = clients(), clients()
    first = device_address.login(*MANAGER)
    device = first.json().get("device")
    details = [f"{device_address.source}: manager logs in, keeps her device: {first}"]
    failures = [attacker.login(MANAGER[0], "wrong-guess") for _ in range(5)]
    details.append(f"{attacker.source}: 5 wrong passwords: {[a.status for a in failures]}")
    known = device_address.login(*MANAGER, device=device or "")
    unknown = clients(device_address.source).login(*MANAGER)
    details.append(f"{device_address.source}: known device, right password: {known}")
    details.append(f"{device_address.source}: unknown device, right password: {unknown}")
    passed = (
        first.status == 200
        and bool(device)
        and all(a.status == 401 for a in failures)
        and known.status == 200
        and unknown.status == 429
        and unknown.json().get("code") == "locked_out"
    )
    name = "the victim's known device passes, an unknown device is locked out"
    return Result(name, passed, details)


def probe_admin(clients) -> Result:
    client = clients()
    answers = [client.admin_login(STAFF[0], "wrong-guess") for _ in range(15)]
    locked = [LOCKED_MESSAGE.encode() in a.body for a in answers]
    right = client.admin_login(*STAFF)
    checked = [a.seconds for a, refused in zip(answers, locked, strict=True) if not refused]
    refused = [a.seconds for a, refused in zip(answers, locked, strict=True) if refused]
    details = [
        f"statuses: {[a.status for a in answers]}",
        f"locked-out message from attempt {locked.index(True) + 1 if True in locked else '-'}",
        f"median time checked: {_ms(checked)}, refused: {_ms(refused)}",
        f"then the right password: {right.status}, "
        f"{'refused with the message' if LOCKED_MESSAGE.encode() in right.body else 'NOT refused'}",
    ]
    passed = (
        all(a.status == 200 for a in answers)
        and locked == [False] * 5 + [True] * 10
        and LOCKED_MESSAGE.encode() in right.body
        and right.status == 200
        and bool(refused)
        and statistics.median(refused) < statistics.median(checked) / 3
    )
    return Result("the admin login is locked after the limit, without the hasher", passed, details)


def probe_boundary(clients) -> Result:
    client = clients()
    # Fifteen attempts at once just before a minute boundary, fifteen just after: a fixed
    # window would count them in two windows and let all 30 through. They name the
    # account probe 3 locked: an attempt past the per-IP throttle is then refused by the
    # lockout at once, without the hasher, so the server's CPU does not spread the
    # attempts over seconds (GCRA rightly admits one more every 3 s).
    boundary = (time.time() // 60 + 1) * 60
    if boundary - time.time() < 3:
        boundary += 60
    time.sleep(max(0.0, boundary - 1 - time.time()))
    with ThreadPoolExecutor(max_workers=30) as pool:
        before = [pool.submit(client.login, STAFF[0], "x") for _ in range(15)]
        time.sleep(max(0.0, boundary + 0.2 - time.time()))
        after = [pool.submit(client.login, STAFF[0], "x") for _ in range(15)]
        before, after = [f.result() for f in before], [f.result() for f in after]
    passed_before = sum(_past_the_throttle(a) for a in before)
    passed_after = sum(_past_the_throttle(a) for a in after)
    throttled = [a for a in after if not _past_the_throttle(a)]
    details = [
        f"before the boundary: {passed_before} of 15 passed; after: {passed_after} of 15 passed",
        f"answers: {sorted(str(a) for a in before + after)[::5]} (every fifth)",
        f"first throttled after the boundary: {throttled[0] if throttled else '-'}",
    ]
    return Result(
        "30 attempts straddling a minute boundary, 20/min per IP: at most 20 pass",
        passed_before + passed_after <= 20,
        details,
    )


def _past_the_throttle(answer: Answer) -> bool:
    return not (answer.status == 429 and answer.json().get("code") == "throttled")


def _ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1000:.0f} ms" if values else "-"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("base_url", help="the demo, e.g. http://127.0.0.1:8000")
    parser.add_argument(
        "--first-source", default="127.0.0.2", help="first loopback source address to use"
    )
    args = parser.parse_args(argv)
    url = urlsplit(args.base_url)
    if url.scheme != "http" or not url.hostname:
        parser.error("the base URL must be http://host:port")
    if not ipaddress.ip_address(_resolve(url.hostname)).is_loopback:
        parser.error("the probes speak from several loopback addresses: serve the demo on loopback")
    sources = iter(ipaddress.ip_address(args.first_source) + n for n in range(250))

    def clients(source: str | None = None) -> Client:
        return Client(url.hostname, url.port or 80, source or str(next(sources)))

    results = [
        probe(clients) for probe in (probe_successes, probe_victim, probe_admin, probe_boundary)
    ]
    for result in results:
        print(f"{'PASS' if result.passed else 'FAIL'}  {result.name}")
        for line in result.details:
            print(f"      {line}")
    return 0 if all(r.passed for r in results) else 1


def _resolve(host: str) -> str:
    return "127.0.0.1" if host == "localhost" else host


if __name__ == "__main__":
    sys.exit(main())
