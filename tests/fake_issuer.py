"""A fake OpenID issuer on 127.0.0.1: discovery, a JWKS with key rotation, and tokens;
as an OpenID provider also authorize and token endpoints, and a GitHub-like
OAuth app with its user API under ``/github``.

Served by a thread of the test process on a free port; nothing leaves this machine.

``python -m tests.fake_issuer`` serves one on port 8002 for trying resource-server mode
by hand (docs/federation.md, "Trying it locally"): it prints the issuer's
``TRUSTED_ISSUERS`` entry and an access token, and serves its keys until interrupted.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import sys
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa

JWKS_PATH = "/keys"
# Answers with a redirect to the key set: a client that follows it reads keys from a URL
# nobody configured.
MOVED_PATH = "/moved"
DISCOVERY_PATH = "/.well-known/openid-configuration"
AUTHORIZE_PATH = "/authorize"
TOKEN_PATH = "/token"
GITHUB = "/github"
CLIENT_ID = "tessera-client"
CLIENT_SECRET = "tessera-client-secret"
AUDIENCE = "https://api.example.test"
TRIAL_PORT = 8002


def s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


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
        # As an OpenID provider: who signs in next, extra claims for its ID tokens, the
        # grants waiting for their code, and GitHub's access tokens.
        self.user: dict[str, Any] = {
            "sub": "user-1",
            "email": "alice@example.com",
            "email_verified": True,
        }
        self.id_token_claims: dict[str, Any] = {}
        self.id_token_kid: str | None = None
        self.grants: dict[str, dict[str, Any]] = {}
        self.github_tokens: dict[str, dict[str, Any]] = {}
        self.github_user: dict[str, Any] = {"id": 4242, "login": "octo"}
        self.github_emails: list[dict[str, Any]] = [
            {"email": "octo@example.com", "primary": True, "verified": True}
        ]
        self.rotate()

    def hold(self) -> None:
        self.arrived.clear()
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    # --- Serving ----------------------------------------------------------------------

    def start(self, port: int = 0) -> FakeIssuer:
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
                path, _, query = self.path.partition("?")
                if path in (AUTHORIZE_PATH, GITHUB + "/login/oauth/authorize"):
                    self._redirect(issuer.authorize(parse_qs(query)))
                    return
                if path == DISCOVERY_PATH:
                    body = issuer.discovery()
                elif path == JWKS_PATH:
                    body = issuer.jwks()
                elif path.startswith(GITHUB + "/api/user"):
                    status, body = issuer.github_api(path, self.headers.get("Authorization"))
                    self._answer(status, body)
                    return
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

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                issuer.requests.append(self.path)
                if issuer.down:
                    self.send_error(503)
                    return
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                authorization = self.headers.get("Authorization")
                if self.path == TOKEN_PATH:
                    form = {k: v[0] for k, v in parse_qs(raw).items()}
                    self._answer(*issuer.token_endpoint(form, authorization))
                elif self.path == GITHUB + "/login/oauth/access_token":
                    form = {k: v[0] for k, v in parse_qs(raw).items()}
                    self._answer(*issuer.github_token_endpoint(form))
                elif self.path == f"{GITHUB}/api/applications/{CLIENT_ID}/token":
                    self._answer(*issuer.github_check(json.loads(raw or "{}"), authorization))
                else:
                    self.send_error(404)

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _redirect(self, location: str) -> None:
                self.send_response(302)
                self.send_header("Location", location)
                self.send_header("Content-Length", "0")
                self.end_headers()

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

        self._server = _QuietServer(("127.0.0.1", port), Handler)
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
            "aud": AUDIENCE,
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

    # --- The OpenID provider and the GitHub-like app ------------------------------------

    def discovery(self) -> dict:
        return {
            "issuer": self.url,
            "jwks_uri": self.url + JWKS_PATH,
            "authorization_endpoint": self.url + AUTHORIZE_PATH,
            "token_endpoint": self.url + TOKEN_PATH,
        }

    def github_urls(self) -> dict[str, str]:
        return {
            "authorize_url": self.url + GITHUB + "/login/oauth/authorize",
            "token_url": self.url + GITHUB + "/login/oauth/access_token",
            "api_url": self.url + GITHUB + "/api",
        }

    def authorize(self, query: dict[str, list[str]]) -> str:
        """The user signs in and consents at once: where the provider sends the browser."""
        params = {name: values[0] for name, values in query.items()}
        code = self.approve(params)
        return f"{params['redirect_uri']}?{urlencode({'code': code, 'state': params['state']})}"

    def approve(self, params: dict[str, str]) -> str:
        """A code for the authorization request ``params`` (as the provider got them)."""
        code = secrets.token_urlsafe(16)
        self.grants[code] = {**params, "user": dict(self.user)}
        return code

    def _client_ok(self, form: dict[str, str], authorization: str | None) -> bool:
        if authorization and authorization.startswith("Basic "):
            pair = base64.b64decode(authorization[6:]).decode()
            return pair == f"{CLIENT_ID}:{CLIENT_SECRET}"
        return form.get("client_id") == CLIENT_ID and form.get("client_secret") == CLIENT_SECRET

    def _grant(self, form: dict[str, str]) -> dict[str, Any] | None:
        grant = self.grants.pop(form.get("code", ""), None)
        if grant is None or grant.get("redirect_uri") != form.get("redirect_uri"):
            return None
        if grant.get("code_challenge_method") != "S256" or grant.get("code_challenge") != s256(
            form.get("code_verifier", "")
        ):
            return None
        return grant

    def token_endpoint(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict]:
        if not self._client_ok(form, authorization):
            return 401, {"error": "invalid_client"}
        grant = self._grant(form)
        if form.get("grant_type") != "authorization_code" or grant is None:
            return 400, {"error": "invalid_grant"}
        claims = {"aud": CLIENT_ID, **grant["user"], **self.id_token_claims}
        if "nonce" in grant and "nonce" not in self.id_token_claims:
            claims["nonce"] = grant["nonce"]
        id_token = self.token(kid=self.id_token_kid, **claims)
        return 200, {
            "access_token": "at-" + secrets.token_urlsafe(8),
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token,
        }

    def github_token_endpoint(self, form: dict[str, str]) -> tuple[int, dict]:
        if not self._client_ok(form, None):
            return 200, {"error": "incorrect_client_credentials"}
        grant = self._grant(form)
        if grant is None:
            # GitHub answers its errors with 200.
            return 200, {"error": "bad_verification_code"}
        return 200, {"access_token": self.github_token(), "token_type": "bearer"}

    def github_token(self, *, app: bool = True) -> str:
        """A GitHub access token for ``github_user``; ``app`` False: another app's."""
        token = "gho_" + secrets.token_urlsafe(12)
        self.github_tokens[token] = {"app": app}
        return token

    def github_api(self, path: str, authorization: str | None) -> tuple[int, Any]:
        token = (authorization or "").removeprefix("Bearer ")
        if token not in self.github_tokens:
            return 401, {"message": "Bad credentials"}
        if path == GITHUB + "/api/user":
            return 200, self.github_user
        if path == GITHUB + "/api/user/emails":
            return 200, self.github_emails
        return 404, {"message": "Not Found"}

    def github_check(self, body: dict, authorization: str | None) -> tuple[int, dict]:
        expected = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        if authorization != f"Basic {expected}":
            return 401, {"message": "Bad credentials"}
        held = self.github_tokens.get(body.get("access_token"))
        if held is None or not held["app"]:
            return 404, {"message": "Not Found"}
        return 200, {"user": self.github_user}


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def trial(issuer: FakeIssuer, *, subject: str, minutes: int) -> str:
    """What ``python -m tests.fake_issuer`` prints: the entry to trust and a token."""
    entry = {
        "issuer": issuer.url,
        "audience": AUDIENCE,
        "algorithms": [issuer.algorithm],
        "user": "create",
        "scopes_claim": "scope",
    }
    token = issuer.token(sub=subject, scope="read", exp=int(time.time()) + minutes * 60)
    return (
        f"A fake issuer at {issuer.url} (Ctrl-C stops it). Trust it with\n\n"
        f'    TESSERA["TRUSTED_ISSUERS"] = [{entry!r}]\n\n'
        "and tessera.authentication.ExternalJWTAuthentication first in "
        "DEFAULT_AUTHENTICATION_CLASSES\n"
        f"(the demo does both when started with DEMO_TRUSTED_ISSUER={issuer.url}).\n"
        f"An access token of {subject!r}, valid {minutes} minutes:\n\n"
        f"Authorization: Bearer {token}\n"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m tests.fake_issuer",
        description="Serve a fake OpenID issuer on 127.0.0.1 and print an access token of it.",
    )
    parser.add_argument("--port", type=int, default=TRIAL_PORT)
    parser.add_argument("--sub", default="newcomer", help="the token's subject")
    parser.add_argument("--minutes", type=int, default=60, help="the token's lifetime")
    options = parser.parse_args(argv)
    issuer = FakeIssuer().start(options.port)
    print(trial(issuer, subject=options.sub, minutes=options.minutes), flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        issuer.stop()


if __name__ == "__main__":
    main()
