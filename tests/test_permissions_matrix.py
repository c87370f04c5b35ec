"""Who may call what: one table, every route of the test app and of ``tessera.urls``.

Each row is a route and method; each column a kind of caller; each cell the status
expected. Statuses past the permission check are the endpoint's own answer to the row's
request (400 for an empty body on a public form, 404 for another user's object), so a
cell can only move by a deliberate change to this file. A route without a row fails
``test_every_route_and_method_has_a_row``; a routed view that leaves
``permission_classes`` to the project's defaults fails
``test_every_view_declares_its_permission_classes``.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from django.urls import URLPattern, URLResolver, get_resolver

from tessera.models import SessionKind
from tessera.services.sessions import open_session
from tessera.views.base import TesseraAPIView

from .authz_support import ALL_SCOPES
from .conftest import auth_header
from .testapp.models import Post

PRINCIPALS = (
    "anonymous",
    "user",
    "admin",
    "manager",
    "hr",
    "staff",
    "superuser",
    "pat",
    "pat_noscope",
)
# (user from the test app's seed, credential kind, scopes): the personal access tokens are the
# manager's, one with every scope and one with none.
CREDENTIALS = {
    "user": ("user", SessionKind.TOKEN, None),
    "admin": ("admin", SessionKind.TOKEN, None),
    "manager": ("manager", SessionKind.TOKEN, None),
    "hr": ("hr", SessionKind.TOKEN, None),
    "staff": ("staff", SessionKind.TOKEN, None),
    "superuser": ("root", SessionKind.TOKEN, None),
    "pat": ("manager", SessionKind.PAT, ALL_SCOPES),
    "pat_noscope": ("manager", SessionKind.PAT, []),
}
PATS = ("pat", "pat_noscope")
# Django's admin site has its own permission system; the browsable API's login form is a
# Django form view open to anyone by nature (tests/test_django_logins.py).
SKIPPED_PREFIXES = ("admin/", "api-auth/")


def expect(default: int, **cells: int) -> dict[str, int]:
    unknown = set(cells) - set(PRINCIPALS)
    assert not unknown, f"unknown principals {unknown}"
    return {principal: cells.get(principal, default) for principal in PRINCIPALS}


def signed_in(default: int, **cells: int) -> dict[str, int]:
    """Every authenticated caller gets ``default``; anonymous gets 401."""
    return expect(default, anonymous=401, **cells)


def login_only(default: int) -> dict[str, int]:
    """Account management: personal access tokens are refused."""
    return signed_in(default, pat=403, pat_noscope=403)


@dataclass
class Context:
    """What a row may point at: the caller's own session and token, another's post."""

    session_id: str
    own_pat_id: str
    manager_post: int


@dataclass(frozen=True)
class Case:
    statuses: dict[str, int]
    body: dict[str, Any] | None = None
    kwargs: Callable[[Context], dict[str, Any]] = field(default=lambda ctx: {})


POST = {"title": "From the matrix", "body": "Hello."}


def at_manager_post(ctx: Context) -> dict[str, Any]:
    return {"pk": ctx.manager_post}


def no_passkey(ctx: Context) -> dict[str, Any]:
    # The caller's session id: a well-formed id that names none of its passkeys.
    return {"passkey_id": ctx.session_id}


# Write on the public board: model permission (Admin, Manager), scope posts:write,
# and ownership of the manager's post unless an Admin (or superuser) moderates.
BOARD_WRITE = dict(user=403, hr=403, staff=403, pat_noscope=403)
# The caller's own posts: another user's post is not found once permissions pass.
MINE_WRITE = dict(user=403, hr=403, staff=403, pat_noscope=403, admin=404, superuser=404)

MATRIX: dict[tuple[str, str], Case] = {
    # --- The test app ---
    ("api/protected/", "GET"): Case(signed_in(200)),
    ("api/admin-content/", "GET"): Case(signed_in(403, admin=200, superuser=200)),
    ("api/manager-content/", "GET"): Case(signed_in(403, manager=200, pat=200, pat_noscope=200)),
    ("api/hr-content/", "GET"): Case(signed_in(403, hr=200)),
    ("api-token-auth/", "POST"): Case(expect(400)),
    ("api/posts/", "GET"): Case(expect(200)),
    ("api/posts/", "POST"): Case(signed_in(201, **BOARD_WRITE), body=POST),
    ("api/posts/<int:pk>/", "GET"): Case(expect(200), kwargs=at_manager_post),
    ("api/posts/<int:pk>/", "PUT"): Case(
        signed_in(200, **BOARD_WRITE), body=POST, kwargs=at_manager_post
    ),
    ("api/posts/<int:pk>/", "PATCH"): Case(
        signed_in(200, **BOARD_WRITE), body=POST, kwargs=at_manager_post
    ),
    ("api/posts/<int:pk>/", "DELETE"): Case(signed_in(204, **BOARD_WRITE), kwargs=at_manager_post),
    ("api/my-posts/", "GET"): Case(signed_in(200, pat_noscope=403)),
    ("api/my-posts/", "POST"): Case(signed_in(201, **BOARD_WRITE), body=POST),
    ("api/my-posts/<int:pk>/", "GET"): Case(
        signed_in(404, manager=200, pat=200, pat_noscope=403), kwargs=at_manager_post
    ),
    ("api/my-posts/<int:pk>/", "PUT"): Case(
        signed_in(200, **MINE_WRITE), body=POST, kwargs=at_manager_post
    ),
    ("api/my-posts/<int:pk>/", "PATCH"): Case(
        signed_in(200, **MINE_WRITE), body=POST, kwargs=at_manager_post
    ),
    ("api/my-posts/<int:pk>/", "DELETE"): Case(
        signed_in(204, **MINE_WRITE), kwargs=at_manager_post
    ),
    ("api/schema/", "GET"): Case(expect(200)),
    ("api/docs/", "GET"): Case(expect(200)),
    # --- tessera.urls, mounted at api/auth/ ---
    ("api/auth/login/", "POST"): Case(expect(400)),
    ("api/auth/logout/", "POST"): Case(signed_in(204)),
    ("api/auth/logout/all/", "POST"): Case(login_only(204)),
    ("api/auth/sessions/", "GET"): Case(login_only(200)),
    ("api/auth/events/", "GET"): Case(login_only(200)),
    # Anyone holding a new-device e-mail's link; an empty body is refused before any lookup.
    ("api/auth/sessions/not-me/", "POST"): Case(expect(400)),
    ("api/auth/sessions/<str:session_id>/", "DELETE"): Case(
        login_only(204), kwargs=lambda ctx: {"session_id": ctx.session_id}
    ),
    ("api/auth/tokens/", "GET"): Case(login_only(200)),
    ("api/auth/tokens/", "POST"): Case(
        login_only(201), body={"name": "matrix", "scopes": ["read"]}
    ),
    ("api/auth/tokens/<str:token_id>/", "DELETE"): Case(
        login_only(204), kwargs=lambda ctx: {"token_id": ctx.own_pat_id}
    ),
    ("api/auth/register/", "POST"): Case(expect(400)),
    ("api/auth/me/", "GET"): Case(signed_in(200)),
    ("api/auth/me/", "PATCH"): Case(login_only(200), body={"first_name": "Matrix"}),
    ("api/auth/me/", "DELETE"): Case(login_only(400)),
    ("api/auth/password/change/", "POST"): Case(login_only(400)),
    ("api/auth/password/reset/", "POST"): Case(expect(400)),
    ("api/auth/password/reset/confirm/", "POST"): Case(expect(400)),
    ("api/auth/email/verify/", "POST"): Case(expect(400)),
    ("api/auth/email/verify/resend/", "POST"): Case(expect(400)),
    ("api/auth/csrf/", "GET"): Case(expect(204)),
    ("api/auth/session/login/", "POST"): Case(expect(400)),
    ("api/auth/session/logout/", "POST"): Case(expect(401)),
    ("api/auth/jwt/", "POST"): Case(expect(400)),
    ("api/auth/jwt/refresh/", "POST"): Case(expect(400)),
    ("api/auth/jwt/verify/", "POST"): Case(expect(400)),
    ("api/auth/jwt/sliding/", "POST"): Case(expect(400)),
    ("api/auth/jwt/sliding/refresh/", "POST"): Case(expect(400)),
    ("api/auth/jwt/jwks/", "GET"): Case(expect(200)),
    ("api/auth/mfa/", "GET"): Case(login_only(200)),
    ("api/auth/mfa/totp/", "POST"): Case(login_only(200)),
    # Recent enough (the session was just opened), but nobody has an app set up.
    ("api/auth/mfa/totp/", "DELETE"): Case(login_only(404)),
    ("api/auth/mfa/totp/confirm/", "POST"): Case(login_only(400)),
    ("api/auth/mfa/recovery-codes/", "GET"): Case(login_only(200)),
    # Recovery codes need a second factor first.
    ("api/auth/mfa/recovery-codes/", "POST"): Case(login_only(409)),
    ("api/auth/mfa/authenticate/", "POST"): Case(expect(400)),
    ("api/auth/reauthenticate/", "POST"): Case(login_only(400)),
    # Passkeys are off in the suite's settings: the ceremonies answer 404 passkeys_disabled
    # once the caller passes, and the keys a user has stay manageable.
    ("api/auth/mfa/webauthn/", "GET"): Case(login_only(200)),
    ("api/auth/mfa/webauthn/register/begin/", "POST"): Case(login_only(404), body={}),
    ("api/auth/mfa/webauthn/register/complete/", "POST"): Case(login_only(400)),
    ("api/auth/mfa/webauthn/<str:passkey_id>/", "PATCH"): Case(
        login_only(404), body={"name": "Matrix"}, kwargs=no_passkey
    ),
    ("api/auth/mfa/webauthn/<str:passkey_id>/", "DELETE"): Case(login_only(404), kwargs=no_passkey),
    ("api/auth/reauthenticate/webauthn/begin/", "POST"): Case(login_only(404)),
    ("api/auth/passkey/login/begin/", "POST"): Case(expect(404)),
    ("api/auth/passkey/login/complete/", "POST"): Case(expect(400)),
    # No sign-in provider is configured in the suite's settings.
    ("api/auth/social/<str:provider>/authorize/", "GET"): Case(
        expect(404), kwargs=lambda ctx: {"provider": "acme"}
    ),
    # Linking to the signed-in account: its own sessions only, and no provider here.
    ("api/auth/social/<str:provider>/authorize/", "POST"): Case(
        login_only(404), body={"mode": "link"}, kwargs=lambda ctx: {"provider": "acme"}
    ),
    # The callback always redirects the browser, here to the error page (no sign-in).
    ("api/auth/social/<str:provider>/callback/", "GET"): Case(
        expect(302), kwargs=lambda ctx: {"provider": "acme"}
    ),
    ("api/auth/social/<str:provider>/token/", "POST"): Case(
        expect(400), kwargs=lambda ctx: {"provider": "acme"}
    ),
    ("api/auth/social/<str:provider>/link/", "POST"): Case(
        login_only(400), kwargs=lambda ctx: {"provider": "acme"}
    ),
    ("api/auth/social/exchange/", "POST"): Case(expect(400)),
    ("api/auth/social/accounts/", "GET"): Case(login_only(200)),
    ("api/auth/social/accounts/<str:identity_id>/", "DELETE"): Case(
        login_only(404), kwargs=lambda ctx: {"identity_id": "1"}
    ),
}


def walk(patterns, prefix: str = "") -> Iterator[tuple[str, Any]]:
    """``(full route, view callback)`` for every URL pattern, includes flattened."""
    for entry in patterns:
        route = prefix + str(entry.pattern)
        if route.startswith(SKIPPED_PREFIXES):
            continue
        if isinstance(entry, URLResolver):
            yield from walk(entry.url_patterns, route)
        elif isinstance(entry, URLPattern):
            yield route, entry.callback


def view_class(callback) -> type:
    cls = getattr(callback, "cls", None) or getattr(callback, "view_class", None)
    assert cls is not None, f"{callback!r} is a function view: make it a class-based view"
    return cls


def methods_of(callback) -> list[str]:
    """The methods a route answers; HEAD and OPTIONS follow GET and the view's metadata."""
    actions = getattr(callback, "actions", None)
    cls = view_class(callback)
    methods = actions if actions else [m for m in cls.http_method_names if hasattr(cls, m)]
    return sorted(m.upper() for m in methods if m not in ("head", "options"))


def routed() -> dict[tuple[str, str], Any]:
    return {
        (route, method): callback
        for route, callback in walk(get_resolver().url_patterns)
        for method in methods_of(callback)
    }


def declares_permission_classes(cls: type) -> bool:
    """Whether ``cls`` (or a class between it and the library bases) sets them itself."""
    for klass in cls.__mro__:
        if klass is TesseraAPIView or klass.__module__.startswith(("rest_framework.", "django.")):
            return False
        if "permission_classes" in vars(klass):
            return True
    return False


def test_every_route_and_method_has_a_row():
    routes = set(routed())
    missing = sorted(routes - set(MATRIX))
    stale = sorted(set(MATRIX) - routes)
    assert not missing, f"add these to MATRIX in {__name__}: {missing}"
    assert not stale, f"these MATRIX rows match no route any more: {stale}"


def all_subclasses(cls: type) -> set[type]:
    found = set()
    for sub in cls.__subclasses__():
        found |= {sub} | all_subclasses(sub)
    return found


def test_every_view_declares_its_permission_classes():
    views = {view_class(callback) for callback in routed().values()}
    views |= {c for c in all_subclasses(TesseraAPIView) if c.__module__.startswith("tessera.")}
    lacking = sorted(c.__qualname__ for c in views if not declares_permission_classes(c))
    assert not lacking, f"declare permission_classes explicitly on {lacking}"


def test_the_declaration_check_catches_an_inherited_default():
    class Forgetful(TesseraAPIView):
        pass

    class Careful(Forgetful):
        permission_classes: list = []

    assert not declares_permission_classes(Forgetful)
    assert declares_permission_classes(Careful)


PARAMETER = re.compile(r"<(?:\w+:)?(\w+)>")


@pytest.fixture
def manager_post(seeded) -> Post:
    return Post.objects.create(owner=seeded["manager"], title="Manager's", body="")


def credential(seeded, principal: str, post: Post) -> tuple[str | None, Context]:
    """The principal's token and what its rows point at."""
    if principal == "anonymous":
        return None, Context(str(uuid.uuid4()), str(uuid.uuid4()), post.pk)
    username, kind, scopes = CREDENTIALS[principal]
    user = seeded[username]
    issued = open_session(user, kind=kind, scopes=scopes)
    own_pat = open_session(user, kind=SessionKind.PAT, scopes=[]).session
    return issued.token, Context(str(issued.session.pk), str(own_pat.pk), post.pk)


@pytest.mark.parametrize("principal", PRINCIPALS)
@pytest.mark.parametrize(
    "route,method", sorted(MATRIX), ids=[f"{m} {r}" for r, m in sorted(MATRIX)]
)
def test_matrix(api, seeded, manager_post, route, method, principal):
    case = MATRIX[(route, method)]
    token, ctx = credential(seeded, principal, manager_post)
    values = case.kwargs(ctx)
    url = "/" + PARAMETER.sub(lambda match: str(values[match.group(1)]), route)
    body = None if case.body is None else json.dumps(case.body)
    response = api.generic(
        method, url, data=body, content_type="application/json", **auth_header(token)
    )
    assert response.status_code == case.statuses[principal], response.content
