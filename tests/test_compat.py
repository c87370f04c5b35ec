"""Compatibility with DRF authtoken and knox: their login view, their tokens, imported.

Tokens are made by the real libraries (both are installed in tests/settings.py), imported
with the management commands, then presented as ``Authorization: Token <old string>``.
"""

from __future__ import annotations

import hashlib
from datetime import timedelta
from io import StringIO

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import override_settings
from knox.models import AuthToken
from rest_framework.authtoken.models import Token
from rest_framework.settings import api_settings

from tessera.legacy.digests import drf_digest
from tessera.models import RevokeReason, Session, SessionKind

from .concurrency import run_together
from .conftest import (
    CREDENTIALS,
    PASSWORD,
    auth_header,
    create_user,
    get_protected,
    post_login,
    requires_postgres,
)
from .testapp.views import ProtectedView

pytestmark = pytest.mark.django_db

TESSERA_CLASSES = [
    "tessera.authentication.TokenAuthentication",
    "tessera.authentication.ImportedTokenAuthentication",
]
DRF_CLASS = "rest_framework.authentication.TokenAuthentication"
TOKEN_AUTH_URL = "/api-token-auth/"
KNOX_CLASS = "knox.auth.TokenAuthentication"


def rest_framework(classes: list[str]) -> dict:
    return {**settings.REST_FRAMEWORK, "DEFAULT_AUTHENTICATION_CLASSES": classes}


@pytest.fixture
def accept_classes(monkeypatch):
    """Make the API accept ``classes``, in order, as a project's settings would.

    DRF copies DEFAULT_AUTHENTICATION_CLASSES onto APIView when it is imported, so the
    test app's view is pointed at the overridden list too.
    """
    overrides = []

    def accept(*classes: str) -> None:
        override = override_settings(REST_FRAMEWORK=rest_framework(list(classes)))
        override.enable()
        overrides.append(override)
        monkeypatch.setattr(
            ProtectedView, "authentication_classes", api_settings.DEFAULT_AUTHENTICATION_CLASSES
        )

    yield accept
    for override in reversed(overrides):
        override.disable()


@pytest.fixture
def imported_accepted(accept_classes):
    accept_classes(*TESSERA_CLASSES)


def run(command: str, *args: str) -> str:
    out = StringIO()
    call_command(command, *args, stdout=out)
    return out.getvalue()


def session_columns() -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(f'SELECT * FROM "{Session._meta.db_table}"')  # noqa: S608
        return cursor.fetchall()


def assert_nowhere_in_sessions(secret: str) -> None:
    rows = session_columns()
    assert rows
    for row in rows:
        assert not any(secret in str(value) for value in row)


# --- obtain_auth_token ---------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["json", "multipart"])
def test_obtain_auth_token_answers_like_drf(api, user, fmt):
    response = api.post(TOKEN_AUTH_URL, CREDENTIALS, format=fmt)
    assert response.status_code == 200
    assert set(response.json()) == {"token"}
    assert response.json()["token"].startswith("tsr1_")
    session = Session.objects.get()
    assert (session.user, session.kind, session.device_name) == (
        user,
        SessionKind.TOKEN,
        "api-token-auth",
    )


def test_obtain_auth_token_accepts_urlencoded_forms(api, user):
    response = api.post(
        TOKEN_AUTH_URL,
        "username=alice&password=correct-horse-battery-staple",
        content_type="application/x-www-form-urlencoded",
    )
    assert response.status_code == 200
    assert set(response.json()) == {"token"}


def test_obtain_auth_token_opens_a_new_session_per_call(api, user):
    tokens = [post_login(api, path=TOKEN_AUTH_URL).json()["token"] for _ in range(3)]
    assert len(set(tokens)) == 3
    assert Session.objects.live().filter(user=user).count() == 3


def test_obtain_auth_token_token_works_and_logs_out(api, user):
    token = post_login(api, path=TOKEN_AUTH_URL).json()["token"]
    assert get_protected(api, token).json() == {"message": "Hello, alice."}
    assert api.post("/api/auth/logout/", **auth_header(token)).status_code == 204
    assert get_protected(api, token).status_code == 401


@pytest.mark.parametrize(
    "credentials",
    [
        {"username": "alice", "password": "wrong"},
        {"username": "nobody", "password": PASSWORD},
    ],
)
def test_obtain_auth_token_bad_credentials_are_401_in_tesseras_shape(api, user, credentials):
    response = api.post(TOKEN_AUTH_URL, credentials, format="json")
    assert response.status_code == 401
    assert response.json() == {
        "code": "invalid_credentials",
        "detail": "Unable to log in with the provided credentials.",
    }
    assert response["WWW-Authenticate"] == 'Token realm="api"'
    assert not Session.objects.exists()


def test_obtain_auth_token_missing_password_is_400_per_field(api, user):
    response = api.post(TOKEN_AUTH_URL, {"username": "alice"}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["fields"]["password"][0]["code"] == "required"
    assert not Session.objects.exists()


# --- DRF authtoken import ------------------------------------------------------------


def test_imported_drf_key_keeps_authenticating(api, user, imported_accepted, clock):
    token = Token.objects.create(user=user)
    created = token.created
    clock.advance(days=3)
    out = run("tessera_import_drf_tokens")
    assert out.strip() == (
        "Imported 1 DRF token(s); 0 already imported, 0 skipped as expired, 0 skipped as "
        "of an unrecognised format; deleted 0 original(s)."
    )
    session = Session.objects.get()
    assert session.user == user
    assert session.kind == SessionKind.TOKEN
    assert session.device_name == "Imported DRF token"
    assert session.token_digest == hashlib.sha256(token.key.encode()).hexdigest()
    assert session.created_at == created
    assert session.expires_at == clock.now + timedelta(days=30)
    assert session.idle_expires_at is None

    response = get_protected(api, token.key)
    assert response.status_code == 200
    assert response.json() == {"message": "Hello, alice."}
    # The first use starts the idle expiry, as for any session.
    session.refresh_from_db()
    assert session.last_used_at == clock.now
    assert session.idle_expires_at == clock.now + timedelta(hours=10)


def test_imported_drf_key_is_a_tessera_session_on_tesseras_endpoints(api, user, imported_accepted):
    token = Token.objects.create(user=user)
    run("tessera_import_drf_tokens")
    listed = api.get("/api/auth/sessions/", **auth_header(token.key)).json()
    assert [(s["device_name"], s["current"]) for s in listed] == [("Imported DRF token", True)]


def test_without_the_class_tesseras_endpoints_refuse_imported_tokens(api, user):
    token = Token.objects.create(user=user)
    run("tessera_import_drf_tokens")
    response = api.post("/api/auth/logout/", **auth_header(token.key))
    assert response.status_code == 401
    assert Session.objects.get().revoked_at is None


def test_logout_revokes_an_imported_token_even_with_the_old_class_behind(api, user, accept_classes):
    accept_classes(*TESSERA_CLASSES, DRF_CLASS)
    token = Token.objects.create(user=user)
    run("tessera_import_drf_tokens")
    assert api.post("/api/auth/logout/", **auth_header(token.key)).status_code == 204
    response = get_protected(api, token.key)
    assert response.status_code == 401
    assert response.json()["code"] == "token_revoked"
    assert Session.objects.get().revoke_reason == RevokeReason.LOGOUT
    assert Token.objects.filter(pk=token.pk).exists()  # the old row did not get it back in


def test_logout_all_revokes_imported_and_new_sessions(api, user, login, imported_accepted):
    old_key = Token.objects.create(user=user).key
    run("tessera_import_drf_tokens")
    new_token = login()["token"]
    assert api.post("/api/auth/logout/all/", **auth_header(old_key)).status_code == 204
    assert get_protected(api, old_key).status_code == 401
    assert get_protected(api, new_token).status_code == 401


def test_no_clear_drf_key_in_any_session_column(api, user, other_user, imported_accepted):
    keys = [Token.objects.create(user=u).key for u in (user, other_user)]
    run("tessera_import_drf_tokens")
    for key in keys:
        assert get_protected(api, key).status_code == 200
        assert_nowhere_in_sessions(key)


def test_drf_import_is_idempotent(user, other_user):
    Token.objects.create(user=user)
    run("tessera_import_drf_tokens")
    Token.objects.create(user=other_user)
    out = run("tessera_import_drf_tokens")
    assert out.startswith("Imported 1 DRF token(s); 1 already imported,")
    assert Session.objects.count() == 2
    assert run("tessera_import_drf_tokens").startswith("Imported 0 DRF token(s); 2 already")
    assert Session.objects.count() == 2


def test_reimport_does_not_revive_a_revoked_session(api, user, imported_accepted):
    token = Token.objects.create(user=user)
    run("tessera_import_drf_tokens")
    api.post("/api/auth/logout/", **auth_header(token.key))
    assert run("tessera_import_drf_tokens").startswith("Imported 0 DRF token(s); 1 already")
    assert get_protected(api, token.key).status_code == 401
    assert Session.objects.get().revoke_reason == RevokeReason.LOGOUT


@pytest.mark.parametrize("extra", [[], ["--delete-originals"]])
def test_drf_dry_run_changes_nothing(user, extra):
    token = Token.objects.create(user=user)
    out = run("tessera_import_drf_tokens", "--dry-run", *extra)
    deleted = 1 if extra else 0
    assert out.strip() == (
        "Dry run, nothing written. Would import 1 DRF token(s); 0 already imported, 0 "
        "skipped as expired, 0 skipped as of an unrecognised format; would delete "
        f"{deleted} original(s)."
    )
    assert not Session.objects.exists()
    assert list(Token.objects.values_list("key", flat=True)) == [token.key]


def test_delete_originals_leaves_the_token_working(api, user, other_user, imported_accepted):
    keys = [Token.objects.create(user=u).key for u in (user, other_user)]
    out = run("tessera_import_drf_tokens", "--delete-originals", "--batch-size", "1")
    assert out.startswith("Imported 2 DRF token(s);")
    assert out.strip().endswith("deleted 2 original(s).")
    assert not Token.objects.exists()
    for key in keys:
        assert get_protected(api, key).status_code == 200


def test_batches_cover_every_token():
    users = [create_user(f"user{i}") for i in range(7)]
    keys = {Token.objects.create(user=u).key for u in users}
    assert run("tessera_import_drf_tokens", "--batch-size", "3").startswith("Imported 7 ")
    digests = set(Session.objects.values_list("token_digest", flat=True))
    assert digests == {drf_digest(key) for key in keys}


def test_no_expiry_keeps_drf_keys_unbounded(user):
    Token.objects.create(user=user)
    run("tessera_import_drf_tokens", "--no-expiry")
    assert Session.objects.get().expires_at is None


@override_settings(TESSERA={"MAX_TTL": None})
def test_without_max_ttl_imported_drf_keys_have_no_absolute_expiry(user):
    Token.objects.create(user=user)
    run("tessera_import_drf_tokens")
    assert Session.objects.get().expires_at is None


def test_imported_drf_key_expires_at_max_ttl(api, user, imported_accepted, clock):
    token = Token.objects.create(user=user)
    run("tessera_import_drf_tokens")
    clock.advance(days=30)
    response = get_protected(api, token.key)
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"


def test_key_of_an_unrecognised_format_is_reported_and_kept(user, other_user):
    Token.objects.create(user=user, key="handmade-key")
    Token.objects.create(user=other_user)
    out = run("tessera_import_drf_tokens", "--delete-originals")
    assert out.strip() == (
        "Imported 1 DRF token(s); 0 already imported, 0 skipped as expired, 1 skipped as "
        "of an unrecognised format; deleted 1 original(s)."
    )
    assert list(Token.objects.values_list("key", flat=True)) == ["handmade-key"]
    assert Session.objects.count() == 1


def test_inactive_user_imported_token_is_refused(api, user, imported_accepted):
    token = Token.objects.create(user=user)
    run("tessera_import_drf_tokens")
    type(user).objects.filter(pk=user.pk).update(is_active=False)
    response = get_protected(api, token.key)
    assert response.status_code == 401
    assert response.json()["code"] == "user_inactive"


# --- knox import -------------------------------------------------------------------


def test_imported_knox_token_keeps_authenticating(api, user, imported_accepted, clock):
    auth_token, token = AuthToken.objects.create(user)
    clock.advance(hours=1)
    out = run("tessera_import_knox_tokens")
    assert out.strip() == (
        "Imported 1 knox token(s); 0 already imported, 0 skipped as expired, 0 skipped as "
        "of an unrecognised format; deleted 0 original(s)."
    )
    session = Session.objects.get()
    assert session.device_name == "Imported knox token"
    assert session.token_digest == auth_token.digest
    assert session.token_digest == hashlib.sha512(token.encode()).hexdigest()
    assert session.created_at == auth_token.created
    assert session.expires_at == auth_token.expiry  # knox's TOKEN_TTL, 10 hours
    assert get_protected(api, token).json() == {"message": "Hello, alice."}


def test_imported_knox_token_expires_when_knox_said(api, user, imported_accepted, clock):
    auth_token, token = AuthToken.objects.create(user, expiry=timedelta(hours=2))
    run("tessera_import_knox_tokens")
    clock.advance(hours=1)
    assert get_protected(api, token).status_code == 200
    clock.advance(hours=1)
    response = get_protected(api, token)
    assert response.status_code == 401
    assert response.json()["code"] == "token_expired"


def test_expired_knox_tokens_are_skipped_and_deleted_on_request(user, clock):
    AuthToken.objects.create(user, expiry=timedelta(minutes=5))
    AuthToken.objects.create(user, expiry=None)
    clock.advance(minutes=5)
    out = run("tessera_import_knox_tokens", "--delete-originals")
    assert out.strip() == (
        "Imported 1 knox token(s); 0 already imported, 1 skipped as expired, 0 skipped as "
        "of an unrecognised format; deleted 2 original(s)."
    )
    assert Session.objects.get().expires_at == clock.now + timedelta(days=30)
    assert not AuthToken.objects.exists()


def test_knox_tokens_without_expiry_follow_no_expiry(user):
    AuthToken.objects.create(user, expiry=None)
    run("tessera_import_knox_tokens", "--no-expiry")
    assert Session.objects.get().expires_at is None


def test_each_knox_device_becomes_its_own_session(api, user, imported_accepted):
    tokens = [AuthToken.objects.create(user)[1] for _ in range(3)]
    run("tessera_import_knox_tokens")
    assert Session.objects.filter(user=user).count() == 3
    assert api.post("/api/auth/logout/", **auth_header(tokens[0])).status_code == 204
    assert get_protected(api, tokens[0]).status_code == 401
    assert get_protected(api, tokens[1]).status_code == 200
    assert get_protected(api, tokens[2]).status_code == 200


def test_no_clear_knox_token_in_any_session_column(api, user, imported_accepted):
    auth_token, token = AuthToken.objects.create(user)
    run("tessera_import_knox_tokens")
    assert get_protected(api, token).status_code == 200
    assert_nowhere_in_sessions(token)
    assert_nowhere_in_sessions(auth_token.token_key)  # knox's clear head is not copied


def test_knox_import_is_idempotent_and_dry_run_writes_nothing(user):
    AuthToken.objects.create(user)
    assert run("tessera_import_knox_tokens", "--dry-run", "--delete-originals").startswith(
        "Dry run, nothing written. Would import 1 knox token(s);"
    )
    assert not Session.objects.exists() and AuthToken.objects.count() == 1
    run("tessera_import_knox_tokens")
    assert run("tessera_import_knox_tokens").startswith("Imported 0 knox token(s); 1 already")
    assert Session.objects.count() == 1


def test_logout_through_tessera_beats_knox_behind(api, user, accept_classes):
    accept_classes(*TESSERA_CLASSES, KNOX_CLASS)
    _, token = AuthToken.objects.create(user)
    run("tessera_import_knox_tokens")
    assert api.post("/api/auth/logout/", **auth_header(token)).status_code == 204
    assert get_protected(api, token).json()["code"] == "token_revoked"


@override_settings(REST_KNOX={"TOKEN_PREFIX": "acme_"})
def test_knox_token_prefix_is_recognised(api, user, imported_accepted):
    _, token = AuthToken.objects.create(user)
    assert token.startswith("acme_")
    run("tessera_import_knox_tokens")
    assert get_protected(api, token).status_code == 200
    assert get_protected(api, token.removeprefix("acme_")).status_code == 401


def test_knox_token_with_another_prefix_is_reported_not_imported(user):
    AuthToken.objects.create(user, prefix="other_")
    out = run("tessera_import_knox_tokens", "--delete-originals")
    assert "Imported 0 knox token(s);" in out
    assert "1 skipped as of an unrecognised format; deleted 0 original(s)." in out
    assert not Session.objects.exists() and AuthToken.objects.count() == 1


@override_settings(REST_KNOX={"AUTH_TOKEN_CHARACTER_LENGTH": 40})
def test_knox_tokens_as_long_as_drf_keys_both_work(api, user, other_user, imported_accepted):
    _, knox_token = AuthToken.objects.create(user)
    drf_key = Token.objects.create(user=other_user).key
    assert len(knox_token) == len(drf_key) == 40
    run("tessera_import_knox_tokens")
    run("tessera_import_drf_tokens")
    assert get_protected(api, knox_token).json() == {"message": "Hello, alice."}
    assert get_protected(api, drf_key).json() == {"message": "Hello, bob."}


@override_settings(REST_KNOX={"SECURE_HASH_ALGORITHM": "hashlib.sha3_512"})
def test_knox_import_refuses_another_hash_algorithm(user):
    AuthToken.objects.create(user)
    with pytest.raises(CommandError, match="SECURE_HASH_ALGORITHM"):
        run("tessera_import_knox_tokens")
    assert not Session.objects.exists()


# --- Commands: bad input -------------------------------------------------------------


@pytest.mark.parametrize("command", ["tessera_import_drf_tokens", "tessera_import_knox_tokens"])
def test_bad_batch_size_is_refused(user, command):
    Token.objects.create(user=user)
    AuthToken.objects.create(user)
    with pytest.raises(CommandError, match="--batch-size"):
        run(command, "--batch-size", "0")
    assert not Session.objects.exists()


@pytest.mark.parametrize(
    ("command", "app"),
    [
        ("tessera_import_drf_tokens", "rest_framework.authtoken"),
        ("tessera_import_knox_tokens", "knox"),
    ],
)
def test_commands_explain_a_missing_app(command, app):
    apps_without = [a for a in settings.INSTALLED_APPS if a != app]
    with override_settings(INSTALLED_APPS=apps_without), pytest.raises(CommandError) as raised:
        run(command)
    assert f"{app} is not in INSTALLED_APPS" in str(raised.value)
    assert raised.value.returncode == 1
    assert not Session.objects.exists()


# --- Authentication: what is looked up, and what is not -------------------------------


@pytest.mark.parametrize(
    "token",
    ["0" * 40, "ab" * 32],  # DRF-shaped and knox-shaped, but never issued
)
def test_unknown_legacy_token_costs_one_query_and_is_passed_on(
    api, imported_accepted, token, django_assert_num_queries
):
    with django_assert_num_queries(1):
        response = get_protected(api, token)
    # No class claimed it, so the request is anonymous and the permission refuses it.
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


@pytest.mark.parametrize(
    "token",
    [
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",  # a JWT
        "A" * 40,  # upper case: neither library issues it
        "0" * 39,
        "0" * 41,
        "g" * 40,
        "0" * 128,
    ],
)
def test_foreign_tokens_are_skipped_without_a_query(
    api, imported_accepted, token, django_assert_num_queries
):
    with django_assert_num_queries(0):
        response = get_protected(api, token)
    assert response.status_code == 401
    assert response.json()["code"] == "not_authenticated"


def test_a_key_not_yet_imported_still_reaches_the_old_class(api, user, accept_classes):
    accept_classes(*TESSERA_CLASSES, DRF_CLASS)
    token = Token.objects.create(user=user)  # minted by the old login view after the import
    assert get_protected(api, token.key).status_code == 200
    assert not Session.objects.exists()


@pytest.mark.parametrize(
    ("header", "code"),
    [
        # Latin-1 but not ASCII: a token no library issues, refused as such.
        ("Token caf\u00e9" + "0" * 36, "invalid_header"),
        # Not even Latin-1 (no WSGI server passes this): read as "?", claimed by nobody.
        ("Token \u2603" + "0" * 39, "not_authenticated"),
    ],
)
@pytest.mark.parametrize(
    "classes",
    [["tessera.authentication.ImportedTokenAuthentication"], TESSERA_CLASSES],
)
def test_non_ascii_header_is_401_not_500(api, user, accept_classes, header, code, classes):
    accept_classes(*classes)
    response = api.get("/api/protected/", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert response.json()["code"] == code


def test_imported_token_query_counts(
    api, user, imported_accepted, clock, django_assert_num_queries
):
    drf_key = Token.objects.create(user=user).key
    _, knox_token = AuthToken.objects.create(user)
    clock.advance(hours=1)
    run("tessera_import_drf_tokens")
    run("tessera_import_knox_tokens")
    for token in (drf_key, knox_token):
        get_protected(api, token)  # the first use records itself (one UPDATE)
        with django_assert_num_queries(1):  # cold: one indexed lookup
            assert get_protected(api, token).status_code == 200
        with django_assert_num_queries(0):  # warm
            assert get_protected(api, token).status_code == 200


def test_the_class_is_importable_from_tessera_authentication():
    from tessera.authentication import ImportedTokenAuthentication

    assert ImportedTokenAuthentication.__module__ == "tessera.authentication"


# --- System check ------------------------------------------------------------------


@pytest.mark.parametrize("legacy", [DRF_CLASS, KNOX_CLASS])
def test_old_class_before_imported_tokens_is_a_startup_error(legacy):
    with override_settings(REST_FRAMEWORK=rest_framework([legacy, *TESSERA_CLASSES])):
        errors = [e for e in run_checks() if e.id == "tessera.E030"]
    assert len(errors) == 1
    assert legacy in errors[0].msg


@pytest.mark.parametrize(
    "classes",
    [[*TESSERA_CLASSES, DRF_CLASS, KNOX_CLASS], [DRF_CLASS], TESSERA_CLASSES[:1]],
)
def test_safe_orders_pass_the_check(classes):
    with override_settings(REST_FRAMEWORK=rest_framework(classes)):
        assert not [e for e in run_checks() if e.id == "tessera.E030"]


# --- Concurrency ---------------------------------------------------------------------


@requires_postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempt", range(3))
def test_concurrent_imports_create_each_session_once(attempt):
    users = [create_user(f"u{attempt}-{i}") for i in range(20)]
    for u in users:
        Token.objects.create(user=u)
    results = run_together(4, lambda i: run("tessera_import_drf_tokens", "--batch-size", "5"))
    assert not [r for r in results if isinstance(r, Exception)], results
    assert Session.objects.count() == 20
    imported = [int(r.split()[1]) for r in results]
    assert sum(imported) == 20
