"""Property tests for everything that parses what a client sends: whatever arrives, the
answer is a 4xx (never a 5xx), nothing authenticates, and each input is handled quickly.

The number of examples is the Hypothesis profile's: a few dozen in ``make test``, many
thousands in ``make fuzz`` (``--hypothesis-profile=fuzz``).
"""

from __future__ import annotations

import base64
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tessera.errors import InvalidNoticeLink
from tessera.models import Session, SessionKind
from tessera.services import device_notices
from tessera.tokens import jwt as tessera_jwt
from tessera.tokens import opaque

from .conftest import PROTECTED_URL, log_in

pytestmark = pytest.mark.django_db

# Function-scoped fixtures (the client, alice) are shared by every example on purpose:
# an example must not change what the next one sees, and the assertions say so.
shared_fixtures = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])

# What a WSGI server can hand over in a header: latin-1 text (PEP 3333), any of it.
header_text = st.text(st.characters(min_codepoint=0, max_codepoint=255), max_size=300)
keywords = st.sampled_from(["Token", "Bearer", "Basic", "JWT", "token", "bearer", ""])
segment = st.binary(max_size=120).map(lambda raw: base64.urlsafe_b64encode(raw).decode())
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)


def b64json(value) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()


jwt_like = st.one_of(
    st.tuples(segment, segment, segment).map(".".join),
    st.tuples(
        st.fixed_dictionaries(
            {"alg": st.sampled_from(["none", "HS256", "RS256", "EdDSA", "ES256"])},
            optional={"kid": st.text(max_size=40), "typ": st.text(max_size=5)},
        ).map(b64json),
        st.dictionaries(
            st.sampled_from(["sub", "sid", "exp", "nbf", "iat", "token_type", "iss", "aud", "jti"]),
            json_values,
        ).map(b64json),
        segment,
    ).map(".".join),
)
opaque_like = st.builds(
    lambda version, body: f"{opaque.PREFIX}{version}_{body}",
    st.sampled_from([opaque.CURRENT_VERSION, "0", "9", ""]),
    st.text(max_size=80),
)


def assert_refused(response) -> None:
    assert response.status_code in (400, 401, 403), (response.status_code, response.content)
    assert response.json()["code"]


@pytest.fixture
def alice_session(api, user):
    """Alice is logged in: a live session exists for a forged credential to hit."""
    log_in(api)
    return Session.objects.get(user=user)


@shared_fixtures
@given(keyword=keywords, value=header_text)
def test_any_authorization_header_is_refused(api, alice_session, keyword, value):
    header = f"{keyword} {value}" if keyword else value
    assert_refused(api.get(PROTECTED_URL, HTTP_AUTHORIZATION=header))


@shared_fixtures
@given(token=opaque_like)
def test_any_opaque_looking_token_is_refused(api, alice_session, token):
    assert_refused(api.get(PROTECTED_URL, HTTP_AUTHORIZATION=f"Token {token}"))


@given(token=st.text(max_size=200))
def test_the_opaque_codec_only_ever_says_malformed(token):
    try:
        stored = opaque.digest(token)
    except opaque.MalformedToken:
        return
    assert len(stored) == 64


@shared_fixtures
@given(token=jwt_like)
def test_any_jwt_looking_token_is_refused(api, alice_session, token):
    assert_refused(api.get(PROTECTED_URL, HTTP_AUTHORIZATION=f"Bearer {token}"))
    response = api.post("/api/auth/jwt/verify/", {"token": token}, format="json")
    assert_refused(response)


@shared_fixtures
@given(token=jwt_like | st.text(max_size=200))
def test_the_jwt_codec_only_ever_says_invalid(db, token):
    with pytest.raises(tessera_jwt.InvalidJWT):
        tessera_jwt.decode(token, token_types=("access", "refresh", "sliding"))


@shared_fixtures
@given(uid=header_text, token=header_text, new_password=st.text(max_size=60))
def test_any_reset_link_is_refused_and_changes_nothing(api, user, uid, token, new_password):
    before = user.password
    body = {"uid": uid, "token": token, "new_password": new_password}
    response = api.post("/api/auth/password/reset/confirm/", body, format="json")
    assert response.status_code in (400, 429), response.content
    user.refresh_from_db()
    assert user.password == before


@shared_fixtures
@given(key=header_text)
def test_any_verification_key_is_refused(api, user, key):
    response = api.post("/api/auth/email/verify/", {"key": key}, format="json")
    assert response.status_code in (400, 429), response.content


# Text shaped like a signed value (payload:timestamp:signature) as well as any text.
signed_like = header_text | st.tuples(segment, segment, segment).map(":".join)


@shared_fixtures
@given(token=signed_like, all_sessions=st.booleans())
def test_any_new_device_link_is_refused_and_ends_no_session(
    api, alice_session, token, all_sessions
):
    body = {"token": token, "all": all_sessions}
    response = api.post("/api/auth/sessions/not-me/", body, format="json")
    assert response.status_code in (400, 429), response.content
    assert Session.objects.filter(revoked_at__isnull=False).count() == 0


@given(token=signed_like)
def test_the_new_device_link_reader_only_ever_says_invalid(token):
    with pytest.raises(InvalidNoticeLink):
        device_notices.read_link_token(token)


@shared_fixtures
@given(email=st.emails() | header_text)
def test_any_address_gets_a_4xx_or_the_same_202(api, user, email):
    response = api.post("/api/auth/password/reset/", {"email": email}, format="json")
    assert response.status_code in (202, 400, 429), response.content
    assert not Session.objects.filter(kind=SessionKind.TOKEN).exclude(user=user).exists()


@shared_fixtures
@given(username=header_text, password=header_text)
def test_any_login_body_is_refused_without_a_5xx(api, user, username, password):
    body = {"username": username, "password": password}
    response = api.post("/api/auth/login/", body, format="json")
    assert response.status_code in (400, 401, 429), response.content
    assert not Session.objects.exists()


@shared_fixtures
@given(body=st.binary(max_size=400))
def test_any_request_body_is_refused_without_a_5xx(api, db, body):
    response = api.generic("POST", "/api/auth/login/", body, content_type="application/json")
    assert response.status_code in (400, 401, 415, 429), response.content
