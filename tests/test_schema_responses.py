"""Real responses match the OpenAPI schema drf-spectacular generates for them.

Every response of every scenario below is looked up in the schema (path, method,
status) and validated with jsonschema, setup calls included: a status the operation
does not declare fails, and so does a field the schema does not list. Each Tessera
route and method needs a scenario that gets a success answer, so a new route cannot
slip past: ``test_every_tessera_operation_has_a_scenario`` names the missing one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import cache
from typing import Any
from urllib.parse import unquote

import jsonschema
import pyotp
import pytest
from django.conf import settings
from django.test import override_settings
from django.urls import resolve, reverse
from drf_spectacular.generators import SchemaGenerator
from rest_framework.test import APIClient

from . import social_support
from .accounts_support import NEW_PASSWORD, link_in, only_mail_to, reset_parts, verify_key
from .conftest import PASSWORD, auth_header
from .fake_issuer import CLIENT_ID, FakeIssuer, query_of
from .jwt_keys import entry
from .routes_support import tessera_routes
from .webauthn_authenticator import ORIGIN, RP_ID, SoftAuthenticator

pytestmark = pytest.mark.django_db


@cache
def openapi() -> dict[str, Any]:
    return SchemaGenerator().get_schema(request=None, public=True)


def as_json_schema(node: Any) -> Any:
    """OpenAPI 3.0 schema objects as JSON Schema, strict about undeclared fields.

    OpenAPI 3.0 spells "or null" as ``nullable: true``, which JSON Schema ignores; and an
    object schema that lists its properties is taken to list all of them.
    """
    if isinstance(node, list):
        return [as_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    node = {key: as_json_schema(value) for key, value in node.items()}
    if node.get("type") == "object" and "properties" in node:
        node.setdefault("additionalProperties", False)
    if node.pop("nullable", False):
        return {"anyOf": [node, {"type": "null"}]}
    return node


FORMATS = jsonschema.FormatChecker()


@FORMATS.checks("date-time", raises=ValueError)
def is_datetime(value: object) -> bool:
    return not isinstance(value, str) or bool(datetime.fromisoformat(value))


def schema_path(url: str) -> tuple[str, str]:
    """The schema's path template for a request URL, and the route's name."""
    match = resolve(url)
    placeholders = {name: f"{{{name}}}" for name in match.kwargs}
    return unquote(reverse(match.view_name, kwargs=placeholders)), match.view_name


def validate(response, document: dict[str, Any]) -> None:
    """Fails unless ``document`` declares this response's status and body."""
    method = response.request["REQUEST_METHOD"].lower()
    path, _ = schema_path(response.request["PATH_INFO"])
    declared = document["paths"][path][method]["responses"]
    status = str(response.status_code)
    assert status in declared, f"{method} {path}: {status} is not declared"
    content = declared[status].get("content")
    if content is None:
        assert not response.content, f"{method} {path}: {status} should have no body"
        return
    schema = as_json_schema(content["application/json"]["schema"])
    # Root-relative $refs ("#/components/schemas/…") resolve against this document.
    schema["components"] = as_json_schema(document["components"])
    jsonschema.validate(response.json(), schema, format_checker=FORMATS)


class SchemaCheckedClient(APIClient):
    """Validates every response against the generated schema; remembers the successes."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.validated: set[tuple[str, str]] = set()

    def request(self, **kwargs: Any):
        response = super().request(**kwargs)
        validate(response, openapi())
        # A redirect the operation declares (social sign-in's) is its success answer.
        if response.status_code < 400:
            method = response.request["REQUEST_METHOD"].lower()
            self.validated.add((schema_path(response.request["PATH_INFO"])[1], method))
        return response


@pytest.fixture
def client() -> SchemaCheckedClient:
    return SchemaCheckedClient()


def log_in(client: SchemaCheckedClient) -> dict[str, str]:
    body = {"username": "alice", "password": PASSWORD, "device_name": "laptop"}
    response = client.post(reverse("tessera:login"), body, format="json")
    assert response.status_code == 200
    return auth_header(response.json()["token"])


def jwt_pair(client: SchemaCheckedClient) -> dict[str, str]:
    body = {"username": "alice", "password": PASSWORD}
    response = client.post(reverse("tessera:jwt-obtain"), body, format="json")
    assert response.status_code == 200
    return response.json()


def sliding_token(client: SchemaCheckedClient) -> str:
    body = {"username": "alice", "password": PASSWORD}
    response = client.post(reverse("tessera:jwt-sliding"), body, format="json")
    assert response.status_code == 200
    return response.json()["token"]


def browser_login(client: SchemaCheckedClient) -> None:
    client.get(reverse("tessera:csrf"))
    client.credentials(HTTP_X_CSRFTOKEN=client.cookies[settings.CSRF_COOKIE_NAME].value)
    body = {"username": "alice", "password": PASSWORD}
    assert client.post(reverse("tessera:session-login"), body, format="json").status_code == 200


def with_authenticator_app(client: SchemaCheckedClient) -> tuple[dict[str, str], list[str]]:
    """Alice sets up an authenticator app; her login header and recovery codes."""
    login = log_in(client)
    secret = client.post(reverse("tessera:mfa-totp"), **login).json()["secret"]
    body = {"code": pyotp.TOTP(secret).now()}
    confirmed = client.post(reverse("tessera:mfa-totp-confirm"), body, format="json", **login)
    assert confirmed.status_code == 200
    return login, confirmed.json()["recovery_codes"]


def personal_token(client: SchemaCheckedClient, login: dict[str, str]) -> dict:
    body = {"name": "ci", "scopes": []}
    response = client.post(reverse("tessera:token-list"), body, format="json", **login)
    assert response.status_code == 201
    return response.json()


# --- One scenario per operation; each must reach that operation's success answer. ---


def list_events(client):
    client.post(reverse("tessera:login"), {"username": "alice", "password": "wrong"}, format="json")
    login = log_in(client)
    client.post(reverse("tessera:logout"), **log_in(client))
    first = client.get(reverse("tessera:event-list"), {"page_size": 2}, **login).json()
    assert {e["outcome"] for e in first["results"]} <= {"success", "failure"}
    client.get(first["next"], **login)


def login_and_list_sessions(client):
    login = log_in(client)
    with override_settings(TESSERA={"TOKEN_TTL": None, "MAX_TTL": None}):
        never_expires = log_in(client)
    client.post(reverse("tessera:logout"), **log_in(client))
    # Live sessions (never revoked), ended ones (revoked, with a reason) and one
    # without any expiry.
    client.get(reverse("tessera:session-list"), **login)
    sessions = client.get(reverse("tessera:session-list"), {"state": "all"}, **never_expires)
    assert {s["revoke_reason"] for s in sessions.json()} == {"", "logout"}
    assert None in {s["expiry"] for s in sessions.json()}


def logout(client):
    client.post(reverse("tessera:logout"), **log_in(client))


def logout_all(client):
    client.post(reverse("tessera:logout-all"), **log_in(client))


def revoke_a_session(client):
    login = log_in(client)
    session_id = client.get(reverse("tessera:session-list"), **login).json()[0]["id"]
    client.delete(reverse("tessera:session-detail", args=[session_id]), **login)


def report_a_new_device_login(client):
    from django.contrib.auth import get_user_model
    from django.core import mail
    from django.utils import timezone

    get_user_model().objects.filter(username="alice").update(last_login=timezone.now())
    log_in(client)
    link = link_in(only_mail_to("alice@example.com"))
    token = unquote(link.rsplit("/", 1)[1])
    client.post(reverse("tessera:session-not-me"), {"token": token}, format="json")
    used = client.post(reverse("tessera:session-not-me"), {"token": token}, format="json")
    assert used.json()["code"] == "notice_link_used"
    assert len(mail.outbox) == 1


def register(client):
    body = {"username": "carol", "email": "carol@example.com", "password": PASSWORD}
    client.post(reverse("tessera:register"), body, format="json")
    with override_settings(TESSERA={"PREVENT_ENUMERATION": False, "REGISTER_AUTO_LOGIN": True}):
        body = {"username": "dave", "email": "dave@example.com", "password": PASSWORD}
        client.post(reverse("tessera:register"), body, format="json")


def read_profile(client):
    client.get(reverse("tessera:me"), **log_in(client))


def update_profile(client):
    client.patch(reverse("tessera:me"), {"first_name": "Alice"}, format="json", **log_in(client))


def delete_account(client):
    client.delete(reverse("tessera:me"), {"password": PASSWORD}, format="json", **log_in(client))


def change_password(client):
    body = {"current_password": PASSWORD, "new_password": NEW_PASSWORD}
    client.post(reverse("tessera:password-change"), body, format="json", **log_in(client))


def reset_password(client):
    client.post(reverse("tessera:password-reset"), {"email": "alice@example.com"}, format="json")


def confirm_password_reset(client):
    reset_password(client)
    uid, token = reset_parts(only_mail_to("alice@example.com"))
    body = {"uid": uid, "token": token, "new_password": NEW_PASSWORD}
    client.post(reverse("tessera:password-reset-confirm"), body, format="json")


def verify_email(client):
    register(client)
    key = verify_key(only_mail_to("carol@example.com"))
    client.post(reverse("tessera:email-verify"), {"key": key}, format="json")


def resend_verification(client):
    body = {"email": "alice@example.com"}
    client.post(reverse("tessera:email-verify-resend"), body, format="json")


def csrf(client):
    client.get(reverse("tessera:csrf"))


def browser_session(client):
    browser_login(client)
    client.get(reverse("tessera:session-list"))


def browser_logout(client):
    browser_login(client)
    client.post(reverse("tessera:session-logout"))


def jwt_obtain(client):
    jwt_pair(client)


def jwt_refresh(client):
    body = {"refresh": jwt_pair(client)["refresh"]}
    client.post(reverse("tessera:jwt-refresh"), body, format="json")


def jwt_verify(client):
    body = {"token": jwt_pair(client)["access"]}
    client.post(reverse("tessera:jwt-verify"), body, format="json")


def jwt_sliding(client):
    sliding_token(client)


def jwt_sliding_refresh(client):
    body = {"token": sliding_token(client)}
    client.post(reverse("tessera:jwt-sliding-refresh"), body, format="json")


def jwks(client):
    with override_settings(TESSERA={"JWT_KEYS": [entry("rsa", "RS256")]}):
        response = client.get(reverse("tessera:jwt-jwks"))
    assert response.json()["keys"]


def list_personal_tokens(client):
    login = log_in(client)
    personal_token(client, login)
    client.get(reverse("tessera:token-list"), **login)


def create_personal_token(client):
    personal_token(client, log_in(client))


def revoke_personal_token(client):
    login = log_in(client)
    token_id = personal_token(client, login)["id"]
    client.delete(reverse("tessera:token-detail", args=[token_id]), **login)


def list_factors(client):
    login, _codes = with_authenticator_app(client)
    factors = client.get(reverse("tessera:mfa"), **login).json()["factors"]
    assert {factor["type"] for factor in factors} == {"totp", "recovery_codes"}


def set_up_totp(client):
    with_authenticator_app(client)


def remove_totp(client):
    login, _codes = with_authenticator_app(client)
    client.delete(reverse("tessera:mfa-totp"), **login)


def recovery_codes(client):
    login, _codes = with_authenticator_app(client)
    client.get(reverse("tessera:mfa-recovery-codes"), **login)
    client.post(reverse("tessera:mfa-recovery-codes"), **login)


def second_factor_logins(client):
    """Each kind of login stops at mfa_required and ends in its own answer."""
    _login, codes = with_authenticator_app(client)
    body = {"username": "alice", "password": PASSWORD}
    logins = ["tessera:login", "tessera:jwt-obtain", "tessera:jwt-sliding", "tessera:session-login"]
    for name, code in zip(logins, codes, strict=False):
        if name == "tessera:session-login":
            client.get(reverse("tessera:csrf"))
            client.credentials(HTTP_X_CSRFTOKEN=client.cookies[settings.CSRF_COOKIE_NAME].value)
        stopped = client.post(reverse(name), body, format="json")
        assert stopped.json()["code"] == "mfa_required"
        second = {"ticket": stopped.json()["ticket"], "code": code}
        finished = client.post(reverse("tessera:mfa-authenticate"), second, format="json")
        assert finished.status_code == 200


def reauthenticate(client):
    body = {"password": PASSWORD}
    client.post(reverse("tessera:reauthenticate"), body, format="json", **log_in(client))


PASSKEYS_ON = override_settings(
    TESSERA={
        "WEBAUTHN_RP_ID": RP_ID,
        "WEBAUTHN_ORIGINS": [ORIGIN],
    }
)


def passkey(client, login: dict[str, str], key: SoftAuthenticator | None = None, **fields) -> dict:
    key = key or SoftAuthenticator()
    with PASSKEYS_ON:
        options = client.post(
            reverse("tessera:passkey-register-begin"), fields, format="json", **login
        ).json()
        body = {"credential": key.create(options), "name": "Laptop", **fields}
        response = client.post(
            reverse("tessera:passkey-register-complete"), body, format="json", **login
        )
    assert response.status_code == 201
    return response.json()


def register_a_passkey(client):
    passkey(client, log_in(client), passwordless=True)


def list_passkeys(client):
    login = log_in(client)
    passkey(client, login)
    client.get(reverse("tessera:passkey-list"), **login)


def rename_a_passkey(client):
    login = log_in(client)
    url = reverse("tessera:passkey-detail", args=[passkey(client, login)["id"]])
    client.patch(url, {"name": "Phone"}, format="json", **login)


def delete_a_passkey(client):
    login = log_in(client)
    url = reverse("tessera:passkey-detail", args=[passkey(client, login)["id"]])
    client.delete(url, **login)


def passwordless_logins(client):
    """A passkey alone logs in, into each kind of session."""
    key = SoftAuthenticator()
    passkey(client, log_in(client), key, passwordless=True)
    client.get(reverse("tessera:csrf"))
    client.credentials(HTTP_X_CSRFTOKEN=client.cookies[settings.CSRF_COOKIE_NAME].value)
    with PASSKEYS_ON:
        for kind in ("token", "jwt", "sliding", "browser"):
            options = client.post(reverse("tessera:passkey-login-begin")).json()
            body = {"credential": key.get(options), "kind": kind}
            response = client.post(reverse("tessera:passkey-login-complete"), body, format="json")
            assert response.status_code == 200


def passkey_login_options(client):
    with PASSKEYS_ON:
        client.post(reverse("tessera:passkey-login-begin"))


def reauthentication_options(client):
    login = log_in(client)
    passkey(client, login)
    with PASSKEYS_ON:
        client.post(reverse("tessera:reauthenticate-webauthn-begin"), **login)


@contextmanager
def social_provider() -> Iterator[FakeIssuer]:
    fake = FakeIssuer().start()
    providers = {"acme": social_support.provider_entry(fake)}
    try:
        with override_settings(TESSERA={**settings.TESSERA, "SOCIAL_PROVIDERS": providers}):
            yield fake
    finally:
        fake.stop()


def social_redirect_sign_ins(client):
    """authorize/, callback/ and exchange/, into each kind of session."""
    with social_provider() as fake:
        for mode in ("token", "jwt", "session"):
            authorize = reverse("tessera:social-authorize", args=["acme"])
            params = query_of(client.get(authorize, {"mode": mode})["Location"])
            back = client.get(
                reverse("tessera:social-callback", args=["acme"]),
                {"code": fake.approve(params), "state": params["state"]},
            )
            code = query_of(back["Location"])["code"]
            response = client.post(
                reverse("tessera:social-exchange"), {"code": code}, format="json"
            )
            assert response.status_code == 200


def social_link_through_the_redirect_flow(client):
    """POST authorize/ from a browser just signed in."""
    with social_provider():
        body = {"username": "alice", "password": PASSWORD}
        assert client.post(reverse("tessera:session-login"), body, format="json").status_code == 200
        url = reverse("tessera:social-authorize", args=["acme"])
        response = client.post(url, {"mode": "link"}, format="json")
        assert response.status_code == 302, response.content


def social_native_sign_in(client):
    with social_provider() as fake:
        body = {"id_token": fake.token(aud=CLIENT_ID), "mode": "jwt"}
        response = client.post(reverse("tessera:social-token", args=["acme"]), body, format="json")
        assert response.status_code == 200


def social_link(client, login: dict[str, str]) -> int:
    with social_provider() as fake:
        body = {"id_token": fake.token(aud=CLIENT_ID, sub="alice-acme")}
        url = reverse("tessera:social-link", args=["acme"])
        response = client.post(url, body, format="json", **login)
        assert response.status_code == 201
        return response.json()["id"]


def list_social_accounts(client):
    login = log_in(client)
    social_link(client, login)
    client.get(reverse("tessera:social-accounts"), **login)


def unlink_a_social_account(client):
    login = log_in(client)
    url = reverse("tessera:social-account-detail", args=[social_link(client, login)])
    assert client.delete(url, **login).status_code == 204


SCENARIOS: dict[tuple[str, str], Callable[[SchemaCheckedClient], None]] = {
    ("tessera:login", "post"): login_and_list_sessions,
    ("tessera:logout", "post"): logout,
    ("tessera:logout-all", "post"): logout_all,
    ("tessera:session-list", "get"): login_and_list_sessions,
    ("tessera:session-detail", "delete"): revoke_a_session,
    ("tessera:session-not-me", "post"): report_a_new_device_login,
    ("tessera:event-list", "get"): list_events,
    ("tessera:register", "post"): register,
    ("tessera:me", "get"): read_profile,
    ("tessera:me", "patch"): update_profile,
    ("tessera:me", "delete"): delete_account,
    ("tessera:password-change", "post"): change_password,
    ("tessera:password-reset", "post"): reset_password,
    ("tessera:password-reset-confirm", "post"): confirm_password_reset,
    ("tessera:email-verify", "post"): verify_email,
    ("tessera:email-verify-resend", "post"): resend_verification,
    ("tessera:csrf", "get"): csrf,
    ("tessera:session-login", "post"): browser_session,
    ("tessera:session-logout", "post"): browser_logout,
    ("tessera:jwt-obtain", "post"): jwt_obtain,
    ("tessera:jwt-refresh", "post"): jwt_refresh,
    ("tessera:jwt-verify", "post"): jwt_verify,
    ("tessera:jwt-sliding", "post"): jwt_sliding,
    ("tessera:jwt-sliding-refresh", "post"): jwt_sliding_refresh,
    ("tessera:jwt-jwks", "get"): jwks,
    ("tessera:token-list", "get"): list_personal_tokens,
    ("tessera:token-list", "post"): create_personal_token,
    ("tessera:token-detail", "delete"): revoke_personal_token,
    ("tessera:mfa", "get"): list_factors,
    ("tessera:mfa-totp", "post"): set_up_totp,
    ("tessera:mfa-totp", "delete"): remove_totp,
    ("tessera:mfa-totp-confirm", "post"): set_up_totp,
    ("tessera:mfa-recovery-codes", "get"): recovery_codes,
    ("tessera:mfa-recovery-codes", "post"): recovery_codes,
    ("tessera:mfa-authenticate", "post"): second_factor_logins,
    ("tessera:reauthenticate", "post"): reauthenticate,
    ("tessera:passkey-register-begin", "post"): register_a_passkey,
    ("tessera:passkey-register-complete", "post"): register_a_passkey,
    ("tessera:passkey-list", "get"): list_passkeys,
    ("tessera:passkey-detail", "patch"): rename_a_passkey,
    ("tessera:passkey-detail", "delete"): delete_a_passkey,
    ("tessera:passkey-login-begin", "post"): passkey_login_options,
    ("tessera:passkey-login-complete", "post"): passwordless_logins,
    ("tessera:reauthenticate-webauthn-begin", "post"): reauthentication_options,
    ("tessera:social-authorize", "get"): social_redirect_sign_ins,
    ("tessera:social-authorize", "post"): social_link_through_the_redirect_flow,
    ("tessera:social-callback", "get"): social_redirect_sign_ins,
    ("tessera:social-exchange", "post"): social_redirect_sign_ins,
    ("tessera:social-token", "post"): social_native_sign_in,
    ("tessera:social-link", "post"): list_social_accounts,
    ("tessera:social-accounts", "get"): list_social_accounts,
    ("tessera:social-account-detail", "delete"): unlink_a_social_account,
}


def test_every_tessera_operation_has_a_scenario():
    operations = {(route.name, method) for route in tessera_routes() for method in route.methods}
    assert operations - set(SCENARIOS) == set(), "add a scenario for these operations"
    assert set(SCENARIOS) - operations == set(), "these scenarios name no route"


@pytest.mark.parametrize("operation", SCENARIOS, ids=" ".join)
def test_success_response_matches_the_schema(client, user, operation):
    SCENARIOS[operation](client)
    assert operation in client.validated, "the scenario never got a success answer"


# --- Error answers: the one error shape, under a status the operation declares. ---


def test_validation_error_matches_the_schema(client, user):
    response = client.post(reverse("tessera:login"), {"username": "alice"}, format="json")
    assert response.status_code == 400
    assert response.json()["fields"]["password"][0]["code"] == "required"


def test_wrong_credentials_match_the_schema(client, user):
    body = {"username": "alice", "password": "wrong"}
    assert client.post(reverse("tessera:jwt-obtain"), body, format="json").status_code == 401


def test_missing_credentials_match_the_schema(client):
    assert client.get(reverse("tessera:session-list")).status_code == 401
    assert client.post(reverse("tessera:logout")).status_code == 401


def test_refusal_of_a_personal_access_token_matches_the_schema(client, user):
    token = personal_token(client, log_in(client))["token"]
    response = client.get(reverse("tessera:token-list"), **auth_header(token))
    assert response.status_code == 403


def test_unknown_session_matches_the_schema(client, user):
    url = reverse("tessera:session-detail", args=["not-a-session"])
    assert client.delete(url, **log_in(client)).status_code == 404


def test_second_factor_errors_match_the_schema(client, user):
    login, _codes = with_authenticator_app(client)
    confirm = client.post(
        reverse("tessera:mfa-totp-confirm"), {"code": "1"}, format="json", **login
    )
    assert confirm.status_code == 404
    assert client.post(reverse("tessera:mfa-totp"), **login).status_code == 409
    body = {"username": "alice", "password": PASSWORD}
    ticket = client.post(reverse("tessera:login"), body, format="json").json()["ticket"]
    wrong = {"ticket": ticket, "code": "000000"}
    assert client.post(reverse("tessera:mfa-authenticate"), wrong, format="json").status_code == 400
    unknown = {"ticket": "unknown", "code": "000000"}
    assert (
        client.post(reverse("tessera:mfa-authenticate"), unknown, format="json").status_code == 401
    )
    wrong_password = {"password": "wrong"}
    reauthenticate = client.post(
        reverse("tessera:reauthenticate"), wrong_password, format="json", **login
    )
    assert reauthenticate.status_code == 400


def test_the_check_refuses_a_schema_that_does_not_match(user):
    """The check itself: a field the schema misdescribes or omits must fail it."""
    response = APIClient().post(
        reverse("tessera:login"), {"username": "alice", "password": PASSWORD}, format="json"
    )
    validate(response, openapi())
    lying = copy.deepcopy(openapi())
    properties = lying["components"]["schemas"]["Session"]["properties"]
    properties["revoked"] = {"type": "string", "format": "date-time"}
    with pytest.raises(jsonschema.ValidationError, match="revoked|None"):
        validate(response, lying)
    del properties["revoked"]
    with pytest.raises(jsonschema.ValidationError, match="revoked"):
        validate(response, lying)
