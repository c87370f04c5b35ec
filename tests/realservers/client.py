"""An HTTP client that reaches every worker process of an app server.

gunicorn hands each connection to one worker process for its whole life, so one
keep-alive connection per worker is a way to send a request to a chosen process:
:class:`Server` opens connections until it holds one for each worker, each known by the
pid the worker puts in its responses (the servers listen with ``--reuse-port``, so the
kernel spreads new connections over the workers).
"""

from __future__ import annotations

import http.client
import json
import time
from dataclasses import dataclass
from http.cookies import SimpleCookie
from urllib.parse import urlencode

from .middleware import PID_HEADER

TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0


class WorkerLost(Exception):
    """A connection stopped reaching its worker (closed, or answered by another one)."""


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]
    body: bytes
    cookies: dict[str, str]

    @property
    def worker(self) -> int:
        return int(self.headers.get(PID_HEADER.lower(), "0"))

    def json(self):
        return json.loads(self.body) if self.body else None

    @property
    def code(self) -> str | None:
        """The error's stable ``code``, if the body is one of Tessera's errors."""
        try:
            body = self.json()
        except ValueError:
            return None
        return body.get("code") if isinstance(body, dict) else None

    def __repr__(self) -> str:
        return f"<{self.status} from {self.worker}: {self.body[:200]!r}>"


def authorization(token: str) -> str:
    """The header for a credential: opaque tokens are ``Token``, JWTs ``Bearer``."""
    return f"Token {token}" if token.startswith("tsr") else f"Bearer {token}"


class Server:
    """One app server, reached through one keep-alive connection per worker process."""

    def __init__(self, name: str, host: str, port: int) -> None:
        self.name = name
        self.host = host
        self.port = port
        self.connections: dict[int, http.client.HTTPConnection] = {}

    def __repr__(self) -> str:
        return f"<server {self.name} :{self.port}>"

    @property
    def workers(self) -> list[int]:
        return list(self.connections)

    def connect_each_worker(self, count: int, timeout: float = CONNECT_TIMEOUT) -> None:
        """Open connections until one reaches each of ``count`` workers."""
        deadline = time.monotonic() + timeout
        while len(self.connections) < count and time.monotonic() < deadline:
            connection = self._connect()
            pid = _send(connection, "GET", "/api/protected/", {}, None).worker
            if pid in self.connections:
                connection.close()
                time.sleep(0.005)  # a worker still starting has no socket yet
            else:
                self.connections[pid] = connection
        if len(self.connections) < count:
            raise WorkerLost(f"{self}: reached {len(self.connections)} of {count} workers")

    def fresh(self) -> Server:
        """Another client of the same server, with connections of its own (one per thread)."""
        other = Server(self.name, self.host, self.port)
        other.connect_each_worker(len(self.connections))
        return other

    def _connect(self) -> http.client.HTTPConnection:
        return http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)

    def request(
        self,
        method: str,
        path: str,
        *,
        token: str | None = None,
        body: dict | None = None,
        form: dict | None = None,
        headers: dict[str, str] | None = None,
        worker: int | None = None,
    ) -> Response:
        """Send one request on the connection of ``worker`` (the first one by default)."""
        pid = self.workers[0] if worker is None else worker
        all_headers = dict(headers or {})
        if token is not None:
            all_headers["Authorization"] = authorization(token)
        payload = None
        if body is not None:
            payload = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        elif form is not None:
            payload = urlencode(form, doseq=True).encode()
            all_headers["Content-Type"] = "application/x-www-form-urlencoded"
        try:
            response = _send(self.connections[pid], method, path, all_headers, payload)
        except (http.client.HTTPException, OSError) as exc:
            raise WorkerLost(
                f"{self} worker {pid}: {method} {path} got no answer: {exc!r}"
            ) from exc
        if response.worker != pid:
            raise WorkerLost(f"{self}: the connection of worker {pid} reached {response!r}")
        return response

    def on_each_worker(self, method: str, path: str, **options) -> dict[int, Response]:
        """The same request sent to every worker in turn."""
        return {pid: self.request(method, path, worker=pid, **options) for pid in self.workers}

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()
        self.connections.clear()


def _send(connection, method: str, path: str, headers: dict, payload: bytes | None) -> Response:
    connection.request(method, path, body=payload, headers=headers)
    answer = connection.getresponse()
    body = answer.read()
    cookies = SimpleCookie()
    for name, value in answer.getheaders():
        if name.lower() == "set-cookie":
            cookies.load(value)
    headers = {name.lower(): value for name, value in answer.getheaders()}
    return Response(answer.status, headers, body, {k: m.value for k, m in cookies.items()})
