"""Second factors: the factor list, TOTP, recovery codes, the second step of a login, and
``reauthenticate/``."""

from django.urls import path

from ..views import mfa

urlpatterns = [
    path("mfa/", mfa.FactorListView.as_view(), name="mfa"),
    path("mfa/totp/", mfa.TOTPView.as_view(), name="mfa-totp"),
    path("mfa/totp/confirm/", mfa.TOTPConfirmView.as_view(), name="mfa-totp-confirm"),
    path("mfa/recovery-codes/", mfa.RecoveryCodesView.as_view(), name="mfa-recovery-codes"),
    path("mfa/authenticate/", mfa.SecondFactorView.as_view(), name="mfa-authenticate"),
    path("reauthenticate/", mfa.ReauthenticateView.as_view(), name="reauthenticate"),
]
