"""Every Tessera operation, fed by schemathesis with data generated from the OpenAPI
schema: no 5xx, and every answer (status, content type, body) is one the schema
documents. Authenticated operations are called with a live token.

The number of examples per operation is bounded in the suite (``make fuzz`` runs more).
"""

from __future__ import annotations

import os

import pytest
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from django.test import override_settings
from hypothesis import HealthCheck, settings
from schemathesis import checks

from tessera.models import SessionKind
from tessera.services import audit
from tessera.services.sessions import open_session

from .conftest import create_user

pytestmark = pytest.mark.django_db
EXAMPLES = int(os.environ.get("TESSERA_SCHEMATHESIS_EXAMPLES", "8"))
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
]


def tessera_schema():
    # Read once at collection through the app itself, so the schema is what it serves.
    with override_settings(ALLOWED_HOSTS=["localhost"]):
        schema = schemathesis.openapi.from_wsgi("/api/schema/", get_wsgi_application())
    return schema.include(path_regex=r"^/api/auth/")


schema = tessera_schema()


@pytest.fixture(autouse=True)
def in_this_thread(settings):
    """The app runs in this thread, inside the test's transaction: Django's handler must
    not close that connection between requests (its test client does the same)."""
    settings.ALLOWED_HOSTS = ["localhost"]
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    # Failures (wrong passwords, lockout refusals) wait for the end of a request that
    # this transport may not signal: write them while the test's users exist.
    audit.flush_deferred()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@schema.parametrize()
@settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_answers_as_documented(case):
    user = create_user_once()
    token = open_session(user, kind=SessionKind.TOKEN).token
    case.call_and_validate(headers={"Authorization": f"Token {token}"}, checks=CHECKS)


def create_user_once():
    from django.contrib.auth import get_user_model

    existing = get_user_model().objects.filter(username="fuzzed").first()
    return existing or create_user("fuzzed", email="fuzzed@example.com")
