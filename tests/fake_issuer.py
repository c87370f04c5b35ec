"""A fake OpenID issuer on 127.0.0.1: discovery, a JWKS with key rotation, and tokens.

Served by a thread of the test process on a free port; nothing leaves this machine.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

JWKS_PATH = "/keys"
# Answers with a redirect to the key set: a client that follows it reads keys from a URL
# nobody configured.
MOVED_PATH = "/moved"
DISCOVERY_PATH = "/.well-known/openid-configuration"


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up on a slow answer is what the slow-issuer tests cause.
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class FakeIssuer:
    """One issuer: ``start()``, mint tokens with ``token()``, ``rotate()`` its key,
    ``down = True`` to answer 503, ``stop()`` to close the port.

    A slow issuer: ``hold()`` makes answers wait until ``release()`` (``arrived`` is set
    when a request is waiting); ``trickle = seconds`` sends each answer, status line and
    headers included, one byte at a time.
    """

    def __init__(self, algorithm: str = "RS256") -> None:
        self.algorithm = algorithm
        self.keys: list[tuple[str, Any]] = []
        self.requests: list[str] = []
        self.down = False
        self.trickle: float | None = None
        self.arrived = threading.Event()
        self._released = threading.Event()
        self._released.set()
        self._server: _QuietServer | None = None
        self.rotate()

    def hold(self) -> None:
        self.arrived.clear()
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    # --- Serving ----------------------------------------------------------------------

    def start(self) -> FakeIssuer:
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                issuer.requests.append(self.path)
                issuer.arrived.set()
                issuer._released.wait(timeout=30)
                if issuer.down:
                    self.send_error(503)
                    return
                if self.path == MOVED_PATH:
                    self.send_response(302)
                    self.send_header("Location", issuer.url + JWKS_PATH)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if self.path == DISCOVERY_PATH:
                    body = {"issuer": issuer.url, "jwks_uri": issuer.url + JWKS_PATH}
                elif self.path == JWKS_PATH:
                    body = issuer.jwks()
                else:
                    self.send_error(404)
                    return
                data = json.dumps(body).encode()
                if issuer.trickle is not None:
                    self._trickle(data, issuer.trickle)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _trickle(self, data: bytes, seconds: float) -> None:
                head = (
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    f"Content-Length: {len(data)}\r\n\r\n"
                ).encode()
                try:
                    for byte in head + data:
                        self.wfile.write(bytes([byte]))
                        self.wfile.flush()
                        time.sleep(seconds)
                except OSError:
                    pass  # the client hung up: what a trickle should end in
                self.close_connection = True

            def log_message(self, *args: Any) -> None:
                pass

        self._server = _QuietServer(("127.0.0.1", 0), Handler)
        # A short poll, so stop() returns at once rather than after half a second.
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self.release()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None, "start() the issuer first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def key_fetches(self) -> int:
        return self.requests.count(JWKS_PATH)

    # --- Keys and tokens --------------------------------------------------------------

    def rotate(self, *, keep_old: bool = True) -> str:
        """A new signing key, published beside the old ones unless ``keep_old`` is false."""
        if self.algorithm.startswith("ES"):
            private = ec.generate_private_key(ec.SECP256R1())
        else:
            private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        kid = uuid.uuid4().hex
        self.keys = ([*self.keys] if keep_old else []) + [(kid, private)]
        return kid

    def jwks(self) -> dict:
        published = []
        for kid, private in self.keys:
            jwk = jwt.get_algorithm_by_name(self.algorithm).to_jwk(
                private.public_key(), as_dict=True
            )
            published.append({**jwk, "kid": kid, "use": "sig", "alg": self.algorithm})
        return {"keys": published}

    def private_key(self, kid: str | None = None) -> Any:
        if kid is None:
            return self.keys[-1][1]
        return dict(self.keys)[kid]

    def claims(self, **claims: Any) -> dict:
        now = int(time.time())
        defaults = {
            "iss": self.url,
            "aud": "https://api.example.test",
            "sub": "user-1",
            "iat": now,
            "exp": now + 300,
        }
        return {**defaults, **claims}

    def token(self, *, headers: dict | None = None, kid: str | None = None, **claims: Any) -> str:
        kid = kid or self.keys[-1][0]
        return jwt.encode(
            self.claims(**claims),
            self.private_key(kid),
            algorithm=self.algorithm,
            headers={"kid": kid, **(headers or {})},
        )
