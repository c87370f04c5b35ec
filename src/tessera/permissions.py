"""Permission classes for roles, scopes, object ownership and step-up authentication.

They combine with DRF's own classes and operators::

    permission_classes = [IsAuthenticated, HasRole("Manager") | IsAdmin]
    permission_classes = [ReadOnly | HasScope("posts:write"), IsOwnerOrReadOnly]

- **Roles** are the names of the user's Django groups, read with one query the first
  time a request asks and remembered on that request only, never in a cache or a token:
  a user removed from a group is refused from their next request on. Only a project
  that sets ``JWT_ROLES_CLAIM`` trusts a JWT's roles claim instead, and an external
  issuer's entry with a ``roles_claim`` its tokens' claim.
- **Scopes** restrict what a session may do (see :mod:`tessera.services.scopes`): login
  sessions carry every scope their user holds, personal access tokens those chosen when
  they were created.
- **Ownership** compares an object's owner field with the request's user.
- **Step-up**: :class:`RequiresRecentAuth` wants the session's last authentication (its
  login or ``reauthenticate/``) to be recent, :class:`RequiresMFA` a session signed in
  with a second factor. Both read the Session row (cached), never a token's claims.

A class that asks for a role, a scope or ownership refuses anonymous requests, which DRF
answers with 401; an authenticated request that lacks it gets 403 with a stable ``code``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from django.core.exceptions import FieldDoesNotExist, ImproperlyConfigured
from django.db import DatabaseError
from rest_framework.permissions import SAFE_METHODS, BasePermission, BasePermissionMetaclass

from .conf import tessera_settings
from .errors import (
    AdminRequired,
    NotOwner,
    PersonalTokenNotAllowed,
    ReauthenticationRequired,
    RoleRequired,
    ScopeRequired,
    SecondFactorRequired,
    ServiceUnavailable,
)
from .models import Session, SessionKind
from .services.mfa import stepup
from .services.scopes import granted_scopes
from .tokens.external import ExternalToken

__all__ = [
    "HasAllRoles",
    "HasAnyRole",
    "HasRole",
    "HasScope",
    "IsAdmin",
    "IsNotPersonalAccessToken",
    "IsOwner",
    "IsOwnerOrReadOnly",
    "OwnedObjectsMixin",
    "ReadOnly",
    "ReadOnlyForPersonalAccessTokens",
    "RequiresMFA",
    "RequiresRecentAuth",
    "TokenHasReadWriteScope",
    "roles_of",
    "scopes_of",
]

# Per-request memo, kept on the HttpRequest so it dies with the request and is never
# part of the user instance that the session cache pickles.
_MEMO_ATTRIBUTE = "_tessera_authorization"


def _authenticated(request) -> bool:
    user = getattr(request, "user", None)
    return bool(user and user.is_authenticated)


def _remembered(request, key: str, compute: Callable[[], frozenset[str]]) -> frozenset[str]:
    """``compute()`` once per request and user (a view may switch ``request.user``)."""
    http_request = getattr(request, "_request", request)
    memo: dict[tuple[str, Any], frozenset[str]] = http_request.__dict__.setdefault(
        _MEMO_ATTRIBUTE, {}
    )
    memo_key = (key, request.user.pk)
    if memo_key not in memo:
        try:
            memo[memo_key] = compute()
        except DatabaseError as exc:
            raise ServiceUnavailable() from exc
    return memo[memo_key]


def _claimed_roles(request) -> frozenset[str] | None:
    """Roles from the token's claim when the project opted in (JWT_ROLES_CLAIM, or the
    external issuer's ``roles_claim``), else None."""
    auth = getattr(request, "auth", None)
    if isinstance(auth, ExternalToken):
        return auth.roles
    claim = tessera_settings.JWT_ROLES_CLAIM
    if not claim:
        return None
    claims = auth if isinstance(auth, dict) else getattr(auth, "jwt_claims", None)
    value = claims.get(claim) if isinstance(claims, dict) else None
    if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
        return None
    return frozenset(value)


def roles_of(request) -> frozenset[str]:
    """Names of the groups of the request's user: at most one query per request.

    Only with JWT_ROLES_CLAIM set, and for a JWT carrying that claim, the token's roles
    are trusted instead (no query; as stale as the token).
    """
    if not _authenticated(request):
        return frozenset()
    claimed = _claimed_roles(request)
    if claimed is not None:
        return claimed
    user = request.user
    groups = getattr(user, "groups", None)
    if groups is None:  # a user model without PermissionsMixin has no groups
        return frozenset()
    return _remembered(request, "roles", lambda: frozenset(groups.values_list("name", flat=True)))


def scopes_of(request) -> frozenset[str]:
    """The scopes this request's credential may use; none when anonymous."""
    if not _authenticated(request):
        return frozenset()
    return _remembered(
        request, "scopes", lambda: granted_scopes(request.user, getattr(request, "auth", None))
    )


class _BoundByNames(BasePermissionMetaclass):
    """Lets ``HasRole("Manager")`` stand in ``permission_classes``.

    DRF instantiates each entry of ``permission_classes`` without arguments, so the
    names have to live on a class: called with names, the class returns a subclass that
    holds them; called without (as DRF does), it is instantiated as usual.
    """

    def __call__(cls, *names: str):
        if names:
            return cls.bind(names)
        if not cls.names:
            raise ImproperlyConfigured(
                f"{cls.__name__} needs names, e.g. {cls.__name__}({cls.example!r})."
            )
        return super().__call__()


class _NamedRequirement(BasePermission, metaclass=_BoundByNames):
    names: tuple[str, ...] = ()
    example = ""
    max_names: int | None = None

    @classmethod
    def bind(cls, names: tuple[str, ...]) -> type:
        if not all(isinstance(name, str) and name for name in names):
            raise TypeError(f"{cls.__name__} takes non-empty strings, not {names!r}.")
        if cls.max_names is not None and len(names) > cls.max_names:
            raise TypeError(f"{cls.__name__} takes {cls.max_names} name; got {len(names)}.")
        label = f"{cls.__name__}({', '.join(map(repr, names))})"
        return type(cls)(label, (cls,), {"names": names, "__module__": cls.__module__})


class HasAllRoles(_NamedRequirement):
    """The user belongs to every one of the named groups. Superusers get no exemption:
    a role says what someone does, not how much they may do (use :class:`IsAdmin`)."""

    example = "Manager"
    message = RoleRequired.default_detail
    code = RoleRequired.default_code

    def has_permission(self, request, view) -> bool:
        return _authenticated(request) and self.satisfied(roles_of(request))

    def satisfied(self, roles: frozenset[str]) -> bool:
        return roles.issuperset(self.names)


class HasRole(HasAllRoles):
    """The user belongs to the named group: ``HasRole("Manager")``."""

    max_names = 1


class HasAnyRole(HasAllRoles):
    """The user belongs to at least one of the named groups."""

    def satisfied(self, roles: frozenset[str]) -> bool:
        return not roles.isdisjoint(self.names)


class IsAdmin(BasePermission):
    """A superuser, or a member of the ``TESSERA['ADMIN_ROLE']`` group ("Admin").

    Unlike DRF's ``IsAdminUser`` this ignores ``is_staff``, which only opens the Django
    admin site.
    """

    message = AdminRequired.default_detail
    code = AdminRequired.default_code

    def has_permission(self, request, view) -> bool:
        if not _authenticated(request):
            return False
        # A superuser is decided without the group query. A user model without
        # PermissionsMixin may have no is_superuser at all: then nobody is one.
        is_superuser = bool(getattr(request.user, "is_superuser", False))
        return is_superuser or tessera_settings.ADMIN_ROLE in roles_of(request)


class HasScope(_NamedRequirement):
    """The request's credential carries every named scope: ``HasScope("posts:write")``.

    A name missing from ``TESSERA['SCOPES']`` is never granted, so a typo refuses.
    """

    example = "posts:write"
    code = ScopeRequired.default_code

    def has_permission(self, request, view) -> bool:
        if not _authenticated(request):
            return False
        missing = sorted(set(self.names) - scopes_of(request))
        self.message = f"This credential lacks the scope {', '.join(missing)}."
        return not missing


class TokenHasReadWriteScope(BasePermission):
    """Safe methods need ``read_scope``, the others ``write_scope``; subclass to rename.

    Write does not imply read: give a token both if it should do both. A scope set to
    None is not required, e.g. ``read_scope = None`` for a board anyone may read.
    """

    read_scope: str | None = "read"
    write_scope: str | None = "write"
    code = ScopeRequired.default_code

    def has_permission(self, request, view) -> bool:
        needed = self.read_scope if request.method in SAFE_METHODS else self.write_scope
        if needed is None:
            return True
        if not _authenticated(request):
            return False
        self.message = f"This credential lacks the scope {needed}."
        return needed in scopes_of(request)


class ReadOnly(BasePermission):
    """Safe methods only; combine as ``ReadOnly | HasScope("posts:write")``."""

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS


class IsNotPersonalAccessToken(BasePermission):
    """Refuses requests made with a personal access token (for account management)."""

    message = PersonalTokenNotAllowed.default_detail
    code = PersonalTokenNotAllowed.default_code

    def has_permission(self, request, view) -> bool:
        session = getattr(request, "auth", None)
        return _authenticated(request) and not (
            isinstance(session, Session) and session.kind == SessionKind.PAT
        )


class ReadOnlyForPersonalAccessTokens(IsNotPersonalAccessToken):
    """A personal access token may read (``me/``) but not change the account."""

    def has_permission(self, request, view) -> bool:
        if request.method in SAFE_METHODS:
            return _authenticated(request)
        return super().has_permission(request, view)


class _BoundByMaxAge(BasePermissionMetaclass):
    """Lets ``RequiresRecentAuth(max_age=timedelta(minutes=1))`` stand in
    ``permission_classes``, as :class:`_BoundByNames` does for names."""

    def __call__(cls, *, max_age: timedelta | None = None):
        if max_age is None:
            return super().__call__()
        if not isinstance(max_age, timedelta) or max_age <= timedelta(0):
            raise TypeError(f"{cls.__name__} takes a positive timedelta, not {max_age!r}.")
        label = f"{cls.__name__}(max_age={max_age!r})"
        return type(cls)(label, (cls,), {"max_age": max_age, "__module__": cls.__module__})


class RequiresRecentAuth(BasePermission, metaclass=_BoundByMaxAge):
    """The session's user proved who they are within ``max_age``
    (``TESSERA['MFA_RECENT_AUTH_MAX_AGE']``, 5 minutes, by default).

    A login counts, and so does ``POST reauthenticate/`` with the password or a second
    factor. Refused: 403 ``reauthentication_required``; personal access tokens, HTTP
    Basic and sessions older than Tessera's step-up records always are.
    """

    max_age: timedelta | None = None
    message = ReauthenticationRequired.default_detail
    code = ReauthenticationRequired.default_code

    def has_permission(self, request, view) -> bool:
        return _authenticated(request) and stepup.is_recent(request, self.max_age)


class RequiresMFA(BasePermission):
    """The session was signed in with a second factor (its ``amr`` holds ``mfa``).

    A session signed in with the password only may step up with ``POST reauthenticate/``
    and a code. Refused: 403 ``mfa_required``.
    """

    message = SecondFactorRequired.default_detail
    code = SecondFactorRequired.default_code

    def has_permission(self, request, view) -> bool:
        return _authenticated(request) and stepup.has_mfa(request)


def owner_pk(obj: Any, owner_field: str) -> Any:
    """The primary key of ``obj``'s owner; ``owner_field`` may span relations (``a__b``).

    For a foreign key the stored id is read, so no query loads the owner.
    """
    *path, last = owner_field.split("__")
    for part in path:
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    meta = getattr(obj, "_meta", None)
    if meta is not None:
        try:
            return getattr(obj, meta.get_field(last).attname)
        except FieldDoesNotExist:
            pass
    owner = getattr(obj, last, None)
    return getattr(owner, "pk", owner)


class IsOwner(BasePermission):
    """The object's owner is the request's user.

    The owner field is the view's ``owner_field`` if it has one, else this class's
    (``"owner"``). Refusal is 403: to answer 404 for other users' objects, limit the
    queryset with :class:`OwnedObjectsMixin` instead of (or besides) this check.
    """

    owner_field = "owner"
    message = NotOwner.default_detail
    code = NotOwner.default_code

    def has_permission(self, request, view) -> bool:
        return _authenticated(request)

    def has_object_permission(self, request, view, obj) -> bool:
        if not _authenticated(request):
            return False
        field = getattr(view, "owner_field", self.owner_field)
        owner = owner_pk(obj, field)
        return owner is not None and owner == request.user.pk


class IsOwnerOrReadOnly(IsOwner):
    """Anyone may read; only the owner may change or delete."""

    def has_permission(self, request, view) -> bool:
        return request.method in SAFE_METHODS or _authenticated(request)

    def has_object_permission(self, request, view, obj) -> bool:
        return request.method in SAFE_METHODS or super().has_object_permission(request, view, obj)


class OwnedObjectsMixin:
    """For generic views: list and look up only the request user's objects.

    Another user's id is then simply not found (404), which reveals nothing about it,
    where an object permission would answer 403. New objects get the user as owner.
    """

    owner_field = "owner"

    def get_queryset(self):
        queryset = super().get_queryset()
        if not _authenticated(self.request):
            return queryset.none()
        return queryset.filter(**{self.owner_field: self.request.user})

    def perform_create(self, serializer) -> None:
        serializer.save(**{self.owner_field: self.request.user})
