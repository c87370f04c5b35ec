"""Social sign-in: the redirect flow for web pages, token sign-in for native apps, and the
account's linked identities. See docs/social.md."""

from __future__ import annotations

from django.http import HttpResponseRedirect
from django.urls import reverse
from rest_framework import status
from rest_framework.parsers import FormParser
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response

from ..conf import tessera_settings
from ..csrf import enforce_csrf
from ..permissions import IsNotPersonalAccessToken, RequiresRecentAuth
from ..schema import document, one_of
from ..serializers.fields import ErrorSerializer
from ..serializers.social import (
    SocialAuthorizeSerializer,
    SocialExchangeSerializer,
    SocialIdentitySerializer,
    SocialLinkStartSerializer,
    SocialTokenLoginSerializer,
    SocialTokenSerializer,
)
from ..services import login as login_service
from ..services.social import accounts, flow
from .base import TesseraAPIView, error_responses
from .login_responses import LOGIN_RESPONSE_SERIALIZERS, login_response

# The cookies binding a redirect sign-in to the browser that started it, one per sign-in
# (the prefix, then the sign-in's binding key), at most MAX_PENDING_SIGN_INS at once.
BINDING_COOKIE_PREFIX = "tessera_social_"
MAX_PENDING_SIGN_INS = 4
LOGIN_ANSWER = one_of(
    "SocialLoginResponse",
    [LOGIN_RESPONSE_SERIALIZERS[kind] for kind in flow.CREDENTIAL_OF_MODE.values()],
)


def _callback_url(request, provider: str) -> str:
    # Django checks the Host against ALLOWED_HOSTS; the provider, against the redirect
    # URIs registered for the app. An entry's redirect_uri replaces this.
    return request.build_absolute_uri(reverse("tessera:social-callback", args=[provider]))


def _binding_path() -> str:
    # Both the callback and exchange/ must receive it: the routes' common parent.
    exchange = reverse("tessera:social-exchange")
    return exchange[: exchange.rstrip("/").rindex("/") + 1]


def _redirect_to_provider(request, provider: str, mode: str, device_name: str, link_user=None):
    started = flow.begin(
        request,
        provider,
        mode,
        _callback_url(request, provider),
        device_name=device_name,
        link_user=link_user,
    )
    response = HttpResponseRedirect(started.url)
    pending = sorted(name for name in request.COOKIES if name.startswith(BINDING_COOKIE_PREFIX))
    for name in pending[: max(0, len(pending) - MAX_PENDING_SIGN_INS + 1)]:
        response.delete_cookie(name, path=_binding_path())
    ttl = tessera_settings.SOCIAL_STATE_TTL + tessera_settings.SOCIAL_CODE_TTL
    response.set_cookie(
        BINDING_COOKIE_PREFIX + started.binding_key,
        started.browser_binding,
        max_age=int(ttl.total_seconds()),
        path=_binding_path(),
        secure=request.is_secure(),
        httponly=True,
        # Lax: the provider's redirect back is a top-level navigation, which Lax sends;
        # exchange/ is a same-site request of the front end.
        samesite="Lax",
    )
    return response


def _needs_csrf(credential: str) -> bool:
    return credential == login_service.BROWSER or (
        credential == login_service.JWT and tessera_settings.JWT_COOKIES
    )


class SocialAuthorizeView(TesseraAPIView):
    """Redirect the browser to the provider's sign-in page (302).

    GET starts a sign-in, open to anyone. POST (a form of the signed-in page, with the
    CSRF token) starts the linking of an identity to the account: the caller must be
    signed in and have authenticated recently, since a linked identity is a new way
    into the account. A plain GET cannot start a link: any site can make one.
    """

    permission_classes = [AllowAny]
    serializer_class = None
    # The link is started by a page's form (a top-level POST, so that the provider's
    # page is where the browser goes next).
    parser_classes = [*TesseraAPIView.parser_classes, FormParser]

    def get_permissions(self):
        if self.request is not None and self.request.method == "POST":
            return [IsAuthenticated(), IsNotPersonalAccessToken(), RequiresRecentAuth()]
        return super().get_permissions()

    @document(
        parameters=[SocialAuthorizeSerializer],
        request=None,
        responses={302: None, **error_responses(400, 404, 429, 503)},
    )
    def get(self, request, provider: str):
        query = SocialAuthorizeSerializer(data=request.query_params)
        query.is_valid(raise_exception=True)
        data = query.validated_data
        return _redirect_to_provider(request, provider, data["mode"], data["device_name"])

    @document(
        request=SocialLinkStartSerializer,
        responses={302: None, **error_responses(400, 401, 403, 404, 429, 503)},
    )
    def post(self, request, provider: str):
        # A session's CSRF token is checked as it authenticates; any other credential
        # must bring one too, this being a form's request.
        enforce_csrf(request)
        SocialLinkStartSerializer(data=request.data).is_valid(raise_exception=True)
        return _redirect_to_provider(request, provider, flow.LINK, "", link_user=request.user)


class SocialCallbackView(TesseraAPIView):
    """Where the provider sends the browser back: redirect (302) to the front end's
    ``social_callback`` page with a one-time code, ``social_linked``, or ``social_error``
    with the refusal's code (``social_provider_unavailable``: the same callback may be
    retried)."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = None

    @document(request=None, responses={302: None, **error_responses(503)})
    def get(self, request, provider: str):
        key = flow.binding_key_of_state(request.query_params.get("state"))
        cookie = None if key is None else BINDING_COOKIE_PREFIX + key
        finished = flow.finish(
            request,
            provider,
            request.query_params,
            request.COOKIES.get(cookie) if cookie else None,
            _callback_url(request, provider),
        )
        response = HttpResponseRedirect(finished.url)
        if cookie and not finished.exchange_follows:
            response.delete_cookie(cookie, path=_binding_path())
        return response


class SocialExchangeView(TesseraAPIView):
    """Trade the one-time code for the credential the sign-in asked for; the answer is
    the password login's for that credential (or 401 ``mfa_required``). Only from the
    browser that started the sign-in (its binding cookie; 403 ``social_browser_mismatch``).
    A browser session, and JWTs in cookie mode, need the CSRF token, as at the password
    login."""

    authentication_classes: list = []
    permission_classes = [AllowAny]
    serializer_class = SocialExchangeSerializer

    @document(
        request=SocialExchangeSerializer,
        responses={200: LOGIN_ANSWER, **error_responses(400, 401, 403, 429, 503)},
    )
    def post(self, request):
        code = self.validated(request)["code"]
        pending = flow.pending(code)
        cookie = None if pending is None else BINDING_COOKIE_PREFIX + pending.binding_key
        if pending is not None and _needs_csrf(flow.CREDENTIAL_OF_MODE[pending.mode]):
            enforce_csrf(request)
        credential, result = flow.exchange(
            request, code, request.COOKIES.get(cookie) if cookie else None
        )
        response = login_response(self, credential, result)
        if cookie:
            response.delete_cookie(cookie, path=_binding_path())
        return response


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
