"""Every operation of the API schema, each with a plausible request of its own.

:func:`operations` reads the schema drf-spectacular generates for the suite's URLs, so an
endpoint added to Tessera is walked without being listed here. :data:`REQUESTS` knows how
to make a request of each operation that a healthy server would serve (a real reset link,
a second session to delete, a CSRF token for a browser login); an operation it does not
know gets a request built from its schema: a token, and its required fields filled in.

Each request is made for a :class:`Kit`: one user of its own, created beforehand, so one
operation's effects (a logout, a new password) never reach another's.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from urllib.parse import unquote

from drf_spectacular.generators import SchemaGenerator

from tests.conftest import PASSWORD

from .client import Response, Server
from .flows import (
    JWT,
    LOGIN,
    NOT_ME_LINK,
    PROTECTED,
    RESET_LINK,
    UnexpectedAnswer,
    expect,
    signed_payload,
)
from .mailbox import plain_text, read, received
from .services import Site

METHODS = ("get", "post", "put", "patch", "delete")
# Tessera's operations and two of the test app's: one a cached session may serve while the
# database is down, one that reads the database whatever the session.
WALKED = re.compile(r"^/(api/auth/|api-token-auth/|api/protected/$|api/posts/$)")
MAIL_TIMEOUT = 10.0
RETRY_TIMEOUT = 15.0


@dataclass(frozen=True)
class Operation:
    method: str
    path: str
    schema: dict = field(repr=False, compare=False)
    # Another request of the same operation (a credential no cache holds, say).
    variant: str = ""

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}" + (f" ({self.variant})" if self.variant else "")


@dataclass(frozen=True)
class Call:
    """One request: the method, the path with its parameters, the body and credentials."""

    method: str
    path: str
    body: dict | None = None
    token: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


def operations() -> list[Operation]:
    """Every walked operation of the schema, in the schema's order."""
    schema = SchemaGenerator().get_schema(request=None, public=True)
    found = []
    for path, item in schema["paths"].items():
        if not WALKED.match(path):
            continue
        for method in METHODS:
            if method in item:
                found.append(Operation(method.upper(), path, _request_schema(schema, item[method])))
    # Authenticated requests whose session is in no cache: only the database can say.
    found += [Operation("GET", PROTECTED, {}, variant) for variant in COLD_CREDENTIALS]
    return found


def _request_schema(schema: dict, operation: dict) -> dict:
    content = operation.get("requestBody", {}).get("content", {})
    body = content.get("application/json", {}).get("schema", {})
    if "$ref" in body:
        body = schema["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
    return body


class Kit:
    """One user of the site and, made on demand, the credentials a request needs."""

    def __init__(self, site: Site, server: Server, username: str) -> None:
        self.site = site
        self.server = server
        self.username = username
        self.email = f"{username}@example.com"
        self.password = PASSWORD
        site.control("create_user", username=username, password=PASSWORD, email=self.email)

    def _post(self, path: str, body: dict, status: int, **options) -> Response:
        return expect(self.server.request("POST", path, body=body, **options), status)

    def _credentials(self) -> dict:
        return {"username": self.username, "password": self.password}

    def _warm(self, token: str) -> str:
        """Served once, so the session is in the shared cache and the worker's own."""
        for worker in self.server.workers:
            expect(self.server.request("GET", PROTECTED, token=token, worker=worker), 200)
        return token

    @cached_property
    def token(self) -> str:
        return self._warm(self._post(LOGIN, self._credentials(), 200).json()["token"])

    @cached_property
    def cold_token(self) -> str:
        """A token no request has used yet: no cache holds its session."""
        return self._post(LOGIN, self._credentials(), 200).json()["token"]

    @cached_property
    def cold_jwt(self) -> str:
        return self._post(JWT, self._credentials(), 200).json()["access"]

    @cached_property
    def jwt(self) -> dict:
        answer = self._post(JWT, self._credentials(), 200).json()
        self._warm(answer["access"])
        return answer

    @cached_property
    def sliding(self) -> str:
        return self._post("/api/auth/jwt/sliding/", self._credentials(), 200).json()["token"]

    @cached_property
    def other_session(self) -> str:
        """The id of a second session of the user (to delete)."""
        return self._post(LOGIN, self._credentials(), 200).json()["session"]["id"]

    @cached_property
    def personal_token(self) -> str:
        body = {"name": "script", "scopes": []}
        return self._post("/api/auth/tokens/", body, 201, token=self.token).json()["id"]

    @cached_property
    def csrf(self) -> dict[str, str]:
        """The headers of a browser request: the CSRF cookie and its token."""
        cookie = expect(self.server.request("GET", "/api/auth/csrf/"), 204).cookies["csrftoken"]
        return {"Cookie": f"csrftoken={cookie}", "X-CSRFToken": cookie}

    @cached_property
    def browser(self) -> dict[str, str]:
        """The headers of a signed-in browser request: session cookie and CSRF token."""
        answer = self._post("/api/auth/session/login/", self._credentials(), 200, headers=self.csrf)
        cookies = f"{self.csrf['Cookie']}; sessionid={answer.cookies['sessionid']}"
        return {"Cookie": cookies, "X-CSRFToken": self.csrf["X-CSRFToken"]}

    @cached_property
    def reset(self) -> dict[str, str]:
        """The uid and token of a reset link e-mailed to the user."""
        sent = len(received(self.site.mailbox, self.email))
        self._post("/api/auth/password/reset/", {"email": self.email}, 202)
        deadline = time.monotonic() + MAIL_TIMEOUT
        while time.monotonic() < deadline:
            for path in received(self.site.mailbox, self.email)[sent:]:
                if link := RESET_LINK.search(plain_text(read(path))):
                    return link.groupdict()
            time.sleep(0.01)
        raise UnexpectedAnswer(f"no reset link was sent to {self.email}")

    @cached_property
    def not_me(self) -> str:
        """The token of a new-device e-mail's link: every login after the user's first
        is from a new device."""
        assert self.token  # the first login, which is not reported
        session_id = self._post(LOGIN, self._credentials(), 200).json()["session"]["id"]
        deadline = time.monotonic() + MAIL_TIMEOUT
        while time.monotonic() < deadline:
            for path in received(self.site.mailbox, self.email):
                for link in NOT_ME_LINK.finditer(plain_text(read(path))):
                    token = unquote(link["token"])
                    if signed_payload(token).get("s") == session_id:
                        return token
            time.sleep(0.01)
        raise UnexpectedAnswer(f"no new-device e-mail was sent to {self.email}")

    def prepare(self, operation: Operation) -> Call:
        """The request for ``operation``, every credential it needs made now."""
        build = REQUESTS.get(operation.name, from_schema)
        return build(self, operation)


def from_schema(kit: Kit, operation: Operation) -> Call:
    """An operation this module does not know: a token, and its required fields."""
    properties = operation.schema.get("properties", {})
    body = {name: _example(properties[name]) for name in operation.schema.get("required", [])}
    path = re.sub(r"\{[^}]+\}", str(uuid.uuid4()), operation.path)
    has_body = operation.method in ("POST", "PUT", "PATCH")
    return Call(operation.method, path, body if has_body else None, kit.token)


def _example(schema: dict):
    kind = schema.get("type")
    if schema.get("format") == "email":
        return "someone@example.com"
    return {"integer": 1, "number": 1, "boolean": False, "array": [], "object": {}}.get(kind, "x")


def _call(method: str, path: str, body: Callable[[Kit], dict] | None = None, auth=None):
    """A builder: ``auth`` picks the credential (a token attribute, or browser headers)."""

    def build(kit: Kit, operation: Operation) -> Call:
        token, headers = None, {}
        if auth == "browser":
            headers = kit.browser
        elif auth == "csrf":
            headers = kit.csrf
        elif auth is not None:
            token = auth(kit)
        return Call(method, path, body(kit) if body else None, token, headers)

    return build


def _token(kit: Kit) -> str:
    return kit.token


def _login(kit: Kit) -> dict:
    return {"username": kit.username, "password": kit.password}


A_KEY = "A" * 43  # well formed: only the database can tell it is unknown
A_TICKET = "tkt_" + "A" * 43

REQUESTS: dict[str, Callable[[Kit, Operation], Call]] = {
    "POST /api-token-auth/": _call("POST", "/api-token-auth/", _login),
    "GET /api/auth/csrf/": _call("GET", "/api/auth/csrf/"),
    "POST /api/auth/email/verify/": _call(
        "POST", "/api/auth/email/verify/", lambda k: {"key": A_KEY}
    ),
    "POST /api/auth/email/verify/resend/": _call(
        "POST", "/api/auth/email/verify/resend/", lambda k: {"email": k.email}
    ),
    "POST /api/auth/jwt/": _call("POST", "/api/auth/jwt/", _login),
    "GET /api/auth/jwt/jwks/": _call("GET", "/api/auth/jwt/jwks/"),
    "POST /api/auth/jwt/refresh/": _call(
        "POST", "/api/auth/jwt/refresh/", lambda k: {"refresh": k.jwt["refresh"]}
    ),
    "POST /api/auth/jwt/sliding/": _call("POST", "/api/auth/jwt/sliding/", _login),
    "POST /api/auth/jwt/sliding/refresh/": _call(
        "POST", "/api/auth/jwt/sliding/refresh/", lambda k: {"token": k.sliding}
    ),
    "POST /api/auth/jwt/verify/": _call(
        "POST", "/api/auth/jwt/verify/", lambda k: {"token": k.jwt["access"]}
    ),
    "POST /api/auth/login/": _call("POST", "/api/auth/login/", _login),
    "POST /api/auth/logout/": _call("POST", "/api/auth/logout/", auth=_token),
    "POST /api/auth/logout/all/": _call(
        "POST", "/api/auth/logout/all/", auth=lambda k: k.jwt["access"]
    ),
    "GET /api/auth/me/": _call("GET", "/api/auth/me/", auth=_token),
    "PATCH /api/auth/me/": _call("PATCH", "/api/auth/me/", lambda k: {"first_name": "Ada"}, _token),
    "DELETE /api/auth/me/": _call(
        "DELETE", "/api/auth/me/", lambda k: {"password": k.password}, _token
    ),
    "POST /api/auth/mfa/authenticate/": _call(
        "POST", "/api/auth/mfa/authenticate/", lambda k: {"ticket": A_TICKET, "code": "123456"}
    ),
    "POST /api/auth/mfa/totp/confirm/": _call(
        "POST", "/api/auth/mfa/totp/confirm/", lambda k: {"code": "123456"}, _token
    ),
    "POST /api/auth/mfa/webauthn/register/begin/": _call(
        "POST", "/api/auth/mfa/webauthn/register/begin/", lambda k: {}, _token
    ),
    "POST /api/auth/password/change/": _call(
        "POST",
        "/api/auth/password/change/",
        lambda k: {"current_password": k.password, "new_password": f"{k.password}-new"},
        _token,
    ),
    "POST /api/auth/password/reset/": _call(
        "POST", "/api/auth/password/reset/", lambda k: {"email": k.email}
    ),
    "POST /api/auth/password/reset/confirm/": _call(
        "POST",
        "/api/auth/password/reset/confirm/",
        lambda k: {**k.reset, "new_password": f"{k.password}-reset"},
    ),
    "POST /api/auth/reauthenticate/": _call(
        "POST", "/api/auth/reauthenticate/", lambda k: {"password": k.password}, _token
    ),
    "POST /api/auth/register/": _call(
        "POST",
        "/api/auth/register/",
        lambda k: {
            "username": f"{k.username}-new",
            "email": f"new-{k.email}",
            "password": f"{k.password}-new",
        },
    ),
    "POST /api/auth/session/login/": _call("POST", "/api/auth/session/login/", _login, "csrf"),
    "POST /api/auth/session/logout/": _call("POST", "/api/auth/session/logout/", auth="browser"),
    "POST /api/auth/sessions/not-me/": _call(
        "POST", "/api/auth/sessions/not-me/", lambda k: {"token": k.not_me}
    ),
    # A browser session, so the session cookie is walked too.
    "GET /api/auth/sessions/": _call("GET", "/api/auth/sessions/", auth="browser"),
}


def _path_call(method: str, template: str, value: Callable[[Kit], str], auth=_token):
    def build(kit: Kit, operation: Operation) -> Call:
        return Call(method, template.format(value(kit)), None, auth(kit))

    return build


COLD_CREDENTIALS = ("cold token", "cold JWT")

REQUESTS |= {
    f"GET {PROTECTED} (cold token)": _call("GET", PROTECTED, auth=lambda k: k.cold_token),
    f"GET {PROTECTED} (cold JWT)": _call("GET", PROTECTED, auth=lambda k: k.cold_jwt),
    "DELETE /api/auth/sessions/{session_id}/": _path_call(
        "DELETE", "/api/auth/sessions/{}/", lambda k: k.other_session
    ),
    "DELETE /api/auth/tokens/{token_id}/": _path_call(
        "DELETE", "/api/auth/tokens/{}/", lambda k: k.personal_token
    ),
    "POST /api/auth/tokens/": _call(
        "POST", "/api/auth/tokens/", lambda k: {"name": "ci", "scopes": []}, _token
    ),
    # A JWT, so both bearer kinds are walked.
    "GET /api/auth/tokens/": _call("GET", "/api/auth/tokens/", auth=lambda k: k.jwt["access"]),
}


def send(server: Server, call: Call, worker: int | None = None) -> Response:
    return server.request(
        call.method, call.path, token=call.token, body=call.body, headers=call.headers,
        worker=worker,
    )  # fmt: skip


def retried(server: Server, call: Call, worker: int | None = None) -> Response:
    """The first answer that is not a 503, as a client honouring Retry-After gets it."""
    deadline = time.monotonic() + RETRY_TIMEOUT
    while True:
        answer = send(server, call, worker)
        if answer.status != 503 or time.monotonic() > deadline:
            return answer
        time.sleep(0.05)
