"""What the external-issuer tests share: views guarded by ExternalJWTAuthentication (and
Tessera's own at api/auth/), linked users, forged tokens. The fake issuers and ``trust``
are fixtures in conftest.py."""

from __future__ import annotations

import base64
import json

from django.urls import include, path
from rest_framework.permissions import IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from tessera.authentication import ExternalJWTAuthentication, JWTAuthentication
from tessera.models import ExternalIdentity
from tessera.permissions import HasRole, HasScope

from .conftest import EXTERNAL_AUDIENCE, create_user

AUDIENCE = EXTERNAL_AUDIENCE


class WhoAmI(APIView):
    authentication_classes = [ExternalJWTAuthentication, JWTAuthentication]
    permission_classes = [IsAuthenticated]

    def get(self, request):
        return Response(
            {
                "username": request.user.get_username(),
                "issuer": request.auth.issuer,
                "sub": request.auth.claims["sub"],
                "session": str(request.auth.session.pk) if request.auth.session else None,
            }
        )


class ManagersOnly(WhoAmI):
    permission_classes = [HasRole("Manager")]


class PostReaders(WhoAmI):
    permission_classes = [HasScope("posts:read")]


urlpatterns = [
    path("api/auth/", include("tessera.urls")),
    path("me/", WhoAmI.as_view()),
    path("managers/", ManagersOnly.as_view()),
    path("posts/", PostReaders.as_view()),
]


def get(api, token, url="/me/"):
    return api.get(url, HTTP_AUTHORIZATION=f"Bearer {token}")


def linked(fake, username="alice", subject="user-1"):
    user = create_user(username)
    ExternalIdentity.objects.create(issuer=fake.url, subject=subject, user=user)
    return user


def assert_refused(response, code="invalid_token"):
    assert response.status_code == 401, response.content
    assert response.json()["code"] == code
    assert response["WWW-Authenticate"]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forge(header: dict, claims: dict, signature: str = "") -> str:
    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(claims).encode()), signature])
