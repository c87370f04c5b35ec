"""One error shape, and unsafe input that gives a 4xx, never a 500."""

from __future__ import annotations

import pytest
from django.db import DatabaseError
from rest_framework import exceptions

from tessera.errors import error_body
from tessera.models import Session

from .conftest import auth_header, failing, post_login

pytestmark = pytest.mark.django_db


def test_validation_errors_are_flattened_per_field(api):
    response = api.post("/api/auth/login/", {"username": "alice"}, format="json")
    assert response.status_code == 400
    assert response.json() == {
        "code": "invalid",
        "detail": "Invalid input.",
        "fields": {"password": [{"code": "required", "detail": "This field is required."}]},
    }


def test_nested_and_list_errors_get_paths():
    exc = exceptions.ValidationError({"address": {"city": ["Bad."]}, "items": [{}, {"n": ["No."]}]})
    assert error_body(exc)["fields"] == {
        "address.city": [{"code": "invalid", "detail": "Bad."}],
        "items.1.n": [{"code": "invalid", "detail": "No."}],
    }


def test_json_array_instead_of_object_is_400(api):
    response = api.post("/api/auth/login/", ["alice", "pw"], format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid"
    assert body["fields"]["non_field_errors"][0]["code"] == "invalid"


def test_malformed_json_is_400(api):
    response = api.post("/api/auth/login/", "{not json", content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


@pytest.mark.parametrize("body", [b"\xff\xfe{}", b'{"password": NaN}'])
def test_non_utf8_or_non_standard_json_is_400(api, body):
    response = api.post("/api/auth/login/", body, content_type="application/json")
    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_ten_megabyte_body_is_413_and_not_read(api, user):
    body = b'{"username": "alice", "password": "' + b"x" * (10 * 1024 * 1024) + b'"}'
    response = api.post("/api/auth/login/", body, content_type="application/json")
    assert response.status_code == 413
    assert response.json()["code"] == "request_too_large"
    assert not Session.objects.exists()


def test_unsupported_media_type_is_415(api):
    response = api.post("/api/auth/login/", "username=a", content_type="text/plain")
    assert response.status_code == 415
    assert response.json()["code"] == "unsupported_media_type"


def test_non_utf8_authorization_header_is_401(api):
    response = api.get("/api/protected/", HTTP_AUTHORIZATION="Token tsr1_\xff\xfe")
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_header"


def test_non_latin1_authorization_header_is_not_a_500(api):
    response = api.get("/api/protected/", HTTP_AUTHORIZATION="Token tsr1_\u20ac")
    assert response.status_code == 401


def test_database_error_is_503_with_retry_after(api, monkeypatch):
    monkeypatch.setattr(
        "tessera.services.login.authenticate", failing(DatabaseError("connection refused"))
    )
    response = post_login(api, password="pw")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["code"] == "service_unavailable"


def test_unknown_session_id_is_404_json(api, user, login):
    token = login()["token"]
    response = api.delete("/api/auth/sessions/not-a-uuid/", **auth_header(token))
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
