"""The schemes the benchmark compares. Adding one is one entry in :data:`VARIANTS`.

Each variant is served at ``/<slug>/`` by the same trivial view; only its
authentication classes differ. ``issue`` mints one new credential for a user and
returns the Authorization header that presents it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from django.contrib.auth.models import User
from django.utils import timezone
from knox.models import AuthToken
from rest_framework.authtoken.models import Token
from rest_framework_simplejwt.tokens import AccessToken

from tessera.models import SessionKind
from tessera.services import jwt as tessera_jwt
from tessera.services.sessions import open_session


@dataclass(frozen=True)
class Variant:
    slug: str
    label: str
    # Dotted paths of the authentication classes; empty for the unauthenticated ceiling.
    authentication: tuple[str, ...]
    issue: Callable[[User], str] | None = None
    # Which server configuration answers it (see run.SERVERS).
    server: str = "main"


def tessera_header(user: User) -> str:
    return f"Token {open_session(user).token}"


def tessera_jwt_header(user: User) -> str:
    session = open_session(user, kind=SessionKind.JWT).session
    return f"Bearer {tessera_jwt.issue_access(session, timezone.now())}"


def drf_token_header(user: User) -> str:
    token, _ = Token.objects.get_or_create(user=user)
    return f"Token {token.key}"


def knox_header(user: User) -> str:
    _, token = AuthToken.objects.create(user)
    return f"Token {token}"


def simplejwt_header(user: User) -> str:
    return f"Bearer {AccessToken.for_user(user)}"


CEILING = "ceiling"
VARIANTS: tuple[Variant, ...] = (
    Variant(CEILING, "No authentication (ceiling)", ()),
    Variant(
        "tessera",
        "Tessera tokens",
        ("tessera.authentication.TokenAuthentication",),
        tessera_header,
    ),
    Variant(
        "tessera-no-near-cache",
        "Tessera tokens, no near cache",
        ("tessera.authentication.TokenAuthentication",),
        tessera_header,
        server="no-near-cache",
    ),
    Variant(
        "tessera-uncached",
        "Tessera tokens, no cache (database lookup)",
        ("tessera.authentication.TokenAuthentication",),
        tessera_header,
        server="uncached",
    ),
    Variant(
        "tessera-jwt",
        "Tessera JWT (session checked)",
        ("tessera.authentication.JWTAuthentication",),
        tessera_jwt_header,
    ),
    Variant(
        "tessera-jwt-no-near-cache",
        "Tessera JWT, no near cache",
        ("tessera.authentication.JWTAuthentication",),
        tessera_jwt_header,
        server="no-near-cache",
    ),
    Variant(
        "tessera-jwt-stateless",
        "Tessera JWT, stateless (no session check; user loaded by id)",
        ("tessera.authentication.JWTAuthentication",),
        tessera_jwt_header,
        server="stateless",
    ),
    Variant(
        "drf-token",
        "DRF TokenAuthentication",
        ("rest_framework.authentication.TokenAuthentication",),
        drf_token_header,
    ),
    Variant("knox", "knox", ("knox.auth.TokenAuthentication",), knox_header),
    Variant(
        "simplejwt",
        "simplejwt JWTAuthentication",
        ("rest_framework_simplejwt.authentication.JWTAuthentication",),
        simplejwt_header,
    ),
    Variant(
        "simplejwt-stateless",
        "simplejwt JWTStatelessUserAuthentication",
        ("rest_framework_simplejwt.authentication.JWTStatelessUserAuthentication",),
        simplejwt_header,
    ),
)
BY_SLUG = {variant.slug: variant for variant in VARIANTS}
