"""What a login answers, per credential kind: shared by the four login endpoints and by
``mfa/authenticate/``, which answers what the login it finishes would have answered."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rest_framework.response import Response

from ..conf import tessera_settings
from ..cookies import set_device_cookie, set_token_cookies
from ..serializers.jwt import TokenPairWithUserSerializer
from ..serializers.sessions import (
    BrowserLoginResponseSerializer,
    LoginResponseSerializer,
    SessionSerializer,
    SlidingLoginResponseSerializer,
)
from ..services import devices
from ..services import login as login_service


def token_pair_response(pair, **extra) -> Response:
    response = Response({"access": pair.access, "refresh": pair.refresh, **extra})
    if tessera_settings.JWT_COOKIES:
        set_token_cookies(response, pair)
    return response


def _token(view, issued) -> Response:
    view.request.auth = issued.session
    return Response(
        {
            "token": issued.token,
            "expiry": issued.session.expiry(),
            "user": view.user_data(issued.session.user),
            "session": SessionSerializer(
                issued.session, context=view.get_serializer_context()
            ).data,
        }
    )


def _jwt(view, pair) -> Response:
    return token_pair_response(pair, user=view.user_data(pair.session.user))


def _sliding(view, sliding) -> Response:
    return Response({"token": sliding.token})


def _browser(view, session) -> Response:
    view.request.auth = session
    return Response(
        {
            "user": view.user_data(session.user),
            "session": SessionSerializer(session, context=view.get_serializer_context()).data,
        }
    )


# credential kind -> (view, what complete_login returned) -> the response
LOGIN_RESPONSES: dict[str, Callable[[Any, Any], Response]] = {
    login_service.TOKEN: _token,
    login_service.JWT: _jwt,
    login_service.SLIDING: _sliding,
    login_service.BROWSER: _browser,
}
# The same, as the schema describes them.
LOGIN_RESPONSE_SERIALIZERS = {
    login_service.TOKEN: LoginResponseSerializer,
    login_service.JWT: TokenPairWithUserSerializer,
    login_service.SLIDING: SlidingLoginResponseSerializer,
    login_service.BROWSER: BrowserLoginResponseSerializer,
}


def login_response(view, credential: str, result: Any) -> Response:
    """The answer of a successful login, with its known-device identifier: an HttpOnly
    cookie when the browser holds the credential (and then never in the body, where the
    page's JavaScript could read it), the body field ``device`` otherwise."""
    response = LOGIN_RESPONSES[credential](view, result)
    # A browser login returns its Session; the other credentials carry one.
    session = getattr(result, "session", result)
    device = devices.issue_device(session.user, session.device_key)
    if credential == login_service.BROWSER:
        set_device_cookie(response, device, browser_session=True)
    elif credential == login_service.JWT and tessera_settings.JWT_COOKIES:
        set_device_cookie(response, device, browser_session=False)
    else:
        response.data["device"] = device
    return response
