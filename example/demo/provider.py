"""A small OpenID Connect provider for trying social sign-in without the internet.

``python manage.py demo_provider`` serves it on http://127.0.0.1:8001: discovery, keys,
a sign-in page and a token endpoint with PKCE, for one client (the demo's) and one user.
It is a stand-in for Google or Keycloak on your machine, not something to deploy: its
signing key lives in memory and its users are a constant.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import secrets
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

DEFAULT_PORT = 8001
CLIENT_ID = "tessera-demo"
CLIENT_SECRET = "tessera-demo-secret"
# The one user of the provider: the sign-in page shows these.
USERS = {
    "ada": {
        "password": "lovelace",
        "sub": "demo-ada",
        "email": "ada@provider.example",
        "email_verified": True,
        "name": "Ada Lovelace",
    }
}
# Only this machine's callbacks: the demo API on any local port.
CALLBACK_PATH = "/api/auth/social/demo/callback/"
LOCAL_HOSTS = ("localhost", "127.0.0.1")
PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Demo provider: sign in</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:3rem auto}}
label{{display:block;margin:.6rem 0}}input{{font-size:1rem}}.error{{color:#b00}}</style>
</head><body>
<h1>Demo provider</h1>
<p>Sign in to continue to the Tessera demo. The demo user is <b>ada</b>, password
<b>lovelace</b>.</p>
<p class="error">{error}</p>
<form method="post" action="/authorize">
{hidden}
<label>Username <input name="username" id="username" autocomplete="username"></label>
<label>Password <input name="password" id="password" type="password"></label>
<button type="submit" id="sign-in">Sign in</button>
</form>
</body></html>
"""


def s256(verifier: str) -> str:
    return (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )


class DemoProvider:
    """The provider's state: one signing key, the codes waiting to be traded."""

    def __init__(self, port: int = DEFAULT_PORT) -> None:
        self.port = port
        self.issuer = f"http://127.0.0.1:{port}"
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.kid = uuid.uuid4().hex
        self.grants: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token",
            "jwks_uri": self.issuer + "/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
        }

    def jwks(self) -> dict[str, Any]:
        public = jwt.get_algorithm_by_name("RS256").to_jwk(self.key.public_key(), as_dict=True)
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": "RS256"}]}

    def valid_request(self, params: dict[str, str]) -> bool:
        redirect = urlsplit(params.get("redirect_uri", ""))
        return (
            params.get("client_id") == CLIENT_ID
            and params.get("response_type") == "code"
            and params.get("code_challenge_method") == "S256"
            and bool(params.get("code_challenge"))
            and bool(params.get("state"))
            and redirect.scheme == "http"
            and redirect.hostname in LOCAL_HOSTS
            and redirect.path == CALLBACK_PATH
        )

    def sign_in(self, params: dict[str, str], username: str, password: str) -> str | None:
        """Where to send the browser once the user signed in, or None for a wrong password."""
        user = USERS.get(username)
        if user is None or not secrets.compare_digest(user["password"], password):
            return None
        code = secrets.token_urlsafe(24)
        with self.lock:
            self.grants[code] = {**params, "user": user, "expires": time.time() + 60}
        query = urlencode({"code": code, "state": params["state"]})
        return f"{params['redirect_uri']}?{query}"

    def token(self, form: dict[str, str], authorization: str | None) -> tuple[int, dict]:
        client = (form.get("client_id"), form.get("client_secret"))
        if authorization and authorization.startswith("Basic "):
            client = tuple(base64.b64decode(authorization[6:]).decode().split(":", 1))
        if client != (CLIENT_ID, CLIENT_SECRET):
            return 401, {"error": "invalid_client"}
        with self.lock:
            grant = self.grants.pop(form.get("code", ""), None)
        if (
            grant is None
            or grant["expires"] < time.time()
            or grant["redirect_uri"] != form.get("redirect_uri")
            or grant["code_challenge"] != s256(form.get("code_verifier", ""))
        ):
            return 400, {"error": "invalid_grant"}
        user, now = grant["user"], int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": user["sub"],
            "iat": now,
            "exp": now + 300,
            "email": user["email"],
            "email_verified": user["email_verified"],
            "name": user["name"],
            "amr": ["pwd"],
        }
        if "nonce" in grant:
            claims["nonce"] = grant["nonce"]
        id_token = jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": self.kid})
        return 200, {
            "access_token": secrets.token_urlsafe(24),
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": id_token,
        }


def handler_for(provider: DemoProvider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path, _, query = self.path.partition("?")
            if path == "/.well-known/openid-configuration":
                self._json(200, provider.discovery())
            elif path == "/jwks":
                self._json(200, provider.jwks())
            elif path == "/authorize":
                params = {k: v[0] for k, v in parse_qs(query).items()}
                if not provider.valid_request(params):
                    self._page(400, "This sign-in request is not the demo's.", {})
                else:
                    self._page(200, "", params)
            else:
                self.send_error(404)

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            length = int(self.headers.get("Content-Length") or 0)
            form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}
            if self.path == "/token":
                self._json(*provider.token(form, self.headers.get("Authorization")))
            elif self.path == "/authorize":
                username, password = form.pop("username", ""), form.pop("password", "")
                if not provider.valid_request(form):
                    self._page(400, "This sign-in request is not the demo's.", {})
                elif (target := provider.sign_in(form, username, password)) is None:
                    self._page(200, "Wrong username or password.", form)
                else:
                    self.send_response(303)
                    self.send_header("Location", target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
            else:
                self.send_error(404)

        def _json(self, status: int, body: Any) -> None:
            self._send(status, "application/json", json.dumps(body).encode())

        def _page(self, status: int, error: str, params: dict[str, str]) -> None:
            hidden = "\n".join(
                f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                for k, v in params.items()
            )
            body = PAGE.format(error=html.escape(error), hidden=hidden)
            self._send(status, "text/html; charset=utf-8", body.encode())

        def _send(self, status: int, content_type: str, data: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

    return Handler


def serve(port: int = DEFAULT_PORT) -> ThreadingHTTPServer:
    """The provider's server, bound to 127.0.0.1:``port`` (call ``serve_forever()``)."""
    return ThreadingHTTPServer(("127.0.0.1", port), handler_for(DemoProvider(port)))
