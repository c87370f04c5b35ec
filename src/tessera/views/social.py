"""Social sign-in: the redirect flow for web pages, token sign-in for native apps, and the
account's linked identities. See docs/social.md."""

from __future__ import annotations

from django.http import HttpResponseRedirect
from django.urls import reverse
from rest_framework import status
from rest_framework.exceptions import NotAuthenticated
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from ..conf import tessera_settings
from ..csrf import enforce_csrf
from ..errors import ReauthenticationRequired
from ..permissions import IsNotPersonalAccessToken, RequiresRecentAuth
from ..schema import document, one_of
from ..serializers.fields import ErrorSerializer
from ..serializers.social import (
    SocialAuthorizeSerializer,
    SocialExchangeSerializer,
    SocialIdentitySerializer,
    SocialTokenLoginSerializer,
    SocialTokenSerializer,
)
from ..services import login as login_service
from ..services.social import accounts, flow
from .base import TesseraAPIView, error_responses
from .login_responses import LOGIN_RESPONSE_SERIALIZERS, login_response

# The cookie binding a redirect sign-in to the browser that started it.
BINDING_COOKIE = "tessera_social"
LOGIN_ANSWER = one_of(
    "SocialLoginResponse",
    [LOGIN_RESPONSE_SERIALIZERS[kind] for kind in flow.CREDENTIAL_OF_MODE.values()],
)


def _callback_url(request, provider: str) -> str:
    # Django checks the Host against ALLOWED_HOSTS; the provider, against the redirect
    # URIs registered for the app. An entry's redirect_uri replaces this.
    return request.build_absolute_uri(reverse("tessera:social-callback", args=[provider]))


def _needs_csrf(credential: str) -> bool:
    return credential == login_service.BROWSER or (
        credential == login_service.JWT and tessera_settings.JWT_COOKIES
    )


class SocialAuthorizeView(TesseraAPIView):
    """Redirect the browser to the provider's sign-in page (302).

    Open to anyone; with ``mode=link`` the caller must be signed in (a browser session)
    and have authenticated recently, since a linked identity is a new way into the
    account.
    """

    permission_classes = [AllowAny]
    serializer_class = None

    @document(
        parameters=[SocialAuthorizeSerializer],
        request=None,
        responses={302: None, **error_responses(400, 401, 403, 404, 429, 503)},
    )
    def get(self, request, provider: str):
        query = SocialAuthorizeSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        mode = query.validated_data["mode"]
        link_user = None
        if mode == flow.LINK:
            if not (
                IsAuthenticated().has_permission(request, self)
                and IsNotPersonalAccessToken().has_permission(request, self)
            ):
                raise NotAuthenticated()
            if not RequiresRecentAuth().has_permission(request, self):
                raise ReauthenticationRequired()
            link_user = request.user
        started = flow.begin(
            request,
            provider,
            mode,
            _callback_url(request, provider),
            device_name=query.validated_data["device_name"],
            link_user=link_user,
        )
        response = HttpResponseRedirect(started.url)
        response.set_cookie(
            BINDING_COOKIE,
            started.browser_binding,
            max_age=int(tessera_settings.SOCIAL_STATE_TTL.total_seconds()),
            path=reverse("tessera:social-callback", args=[provider]),
            secure=request.is_secure(),
            httponly=True,
            # Lax: the provider's redirect back is a top-level navigation, which Lax sends.
            samesite="Lax",
        )
        return response


class SocialCallbackView(TesseraAPIView):
    """Where the provider sends the browser back: redirect (302) to the front end's
    ``social_callback`` page with a one-time code, ``social_linked``, or ``social_error``
    with the refusal's code. 503 when the provider cannot be reached (reload to retry)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = None

    @document(request=None, responses={302: None, **error_responses(503)})
    def get(self, request, provider: str):
        target = flow.finish(
            request,
            provider,
            request.query_params,
            request.COOKIES.get(BINDING_COOKIE),
            _callback_url(request, provider),
        )
        response = HttpResponseRedirect(target)
        response.delete_cookie(
            BINDING_COOKIE, path=reverse("tessera:social-callback", args=[provider])
        )
        return response


class SocialExchangeView(TesseraAPIView):
    """Trade the one-time code for the credential the sign-in asked for; the answer is
    the password login's for that credential (or 401 ``mfa_required``). A browser session,
    and JWTs in cookie mode, need the CSRF token, as at the password login."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = SocialExchangeSerializer

    @document(
        request=SocialExchangeSerializer,
        responses={200: LOGIN_ANSWER, **error_responses(400, 401, 403, 429, 503)},
    )
    def post(self, request):
        code = self.validated(request)["code"]
        mode = flow.pending_mode(code)
        if mode is not None and _needs_csrf(flow.CREDENTIAL_OF_MODE[mode]):
            enforce_csrf(request)
        credential, result = flow.exchange(request, code)
        return login_response(self, credential, result)


class SocialTokenLoginView(TesseraAPIView):
    """Log in with a token a native app got from the provider's SDK."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = SocialTokenLoginSerializer

    @document(
        request=SocialTokenLoginSerializer,
        responses={200: LOGIN_ANSWER, **error_responses(400, 401, 403, 404, 429, 503)},
    )
    def post(self, request, provider: str):
        data = self.validated(request)
        credential = flow.CREDENTIAL_OF_MODE[data["mode"]]
        if _needs_csrf(credential):
            enforce_csrf(request)
        result = flow.native_login(
            request,
            provider,
            data["mode"],
            data["device_name"],
            id_token=data.get("id_token"),
            access_token=data.get("access_token"),
            nonce=data.get("nonce"),
        )
        return login_response(self, credential, result)


class SocialAccountView(TesseraAPIView):
    permission_classes = [IsAuthenticated, IsNotPersonalAccessToken]
    serializer_class = None


class SocialLinkView(SocialAccountView):
    """Link the identity a provider's token asserts to the signed-in account (needs a
    recent authentication: it is a new way into the account)."""

    serializer_class = SocialTokenSerializer
    recent_auth_methods = ("POST",)

    @document(
        request=SocialTokenSerializer,
        responses={
            201: SocialIdentitySerializer,
            409: ErrorSerializer,
            **error_responses(400, 401, 403, 404, 503),
        },
    )
    def post(self, request, provider: str):
        data = self.validated(request)
        identity = flow.native_link(
            request,
            request.user,
            provider,
            id_token=data.get("id_token"),
            access_token=data.get("access_token"),
            nonce=data.get("nonce"),
        )
        return Response(SocialIdentitySerializer(identity).data, status=status.HTTP_201_CREATED)


class SocialAccountListView(SocialAccountView):
    """The identities at sign-in providers linked to the account, oldest first."""

    def get_queryset(self):
        return accounts.linked_identities(self.request.user)

    @document(responses={200: SocialIdentitySerializer(many=True), **error_responses(401, 403)})
    def get(self, request):
        return Response(SocialIdentitySerializer(self.get_queryset(), many=True).data)


class SocialAccountDetailView(SocialAccountView):
    """Unlink one identity; never the account's last way to log in (409
    ``social_last_login_method``). Needs a recent authentication."""

    recent_auth_methods = ("DELETE",)

    @document(
        request=None,
        responses={204: None, 409: ErrorSerializer, **error_responses(401, 403, 404, 503)},
    )
    def delete(self, request, identity_id: str):
        accounts.unlink(request, request.user, identity_id)
        return Response(status=status.HTTP_204_NO_CONTENT)
