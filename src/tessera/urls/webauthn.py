"""Passkeys: registration and the key list, passwordless login, re-authentication options.

Mounting this module offers passkeys; WEBAUTHN_RP_ID and WEBAUTHN_ORIGINS switch them on.
Until then the ceremonies answer 404 ``passkeys_disabled``, and existing keys can still be
listed, renamed and deleted.
"""

from django.urls import path

from ..views import webauthn

urlpatterns = [
    path("mfa/webauthn/", webauthn.PasskeyListView.as_view(), name="passkey-list"),
    path(
        "mfa/webauthn/register/begin/",
        webauthn.PasskeyRegisterBeginView.as_view(),
        name="passkey-register-begin",
    ),
    path(
        "mfa/webauthn/register/complete/",
        webauthn.PasskeyRegisterCompleteView.as_view(),
        name="passkey-register-complete",
    ),
    path(
        "mfa/webauthn/<str:passkey_id>/",
        webauthn.PasskeyDetailView.as_view(),
        name="passkey-detail",
    ),
    path(
        "reauthenticate/webauthn/begin/",
        webauthn.ReauthenticateBeginView.as_view(),
        name="reauthenticate-webauthn-begin",
    ),
    path(
        "passkey/login/begin/", webauthn.PasskeyLoginBeginView.as_view(), name="passkey-login-begin"
    ),
    path(
        "passkey/login/complete/",
        webauthn.PasskeyLoginCompleteView.as_view(),
        name="passkey-login-complete",
    ),
]
