"""The account of a user who has one: profile, password change and reset, e-mail
verification. Sign-up is :mod:`tessera.urls.registration`, so it can be left out."""

from django.urls import path

from ..views import accounts

urlpatterns = [
    path("me/", accounts.MeView.as_view(), name="me"),
    path("password/change/", accounts.PasswordChangeView.as_view(), name="password-change"),
    path("password/reset/", accounts.PasswordResetView.as_view(), name="password-reset"),
    path(
        "password/reset/confirm/",
        accounts.PasswordResetConfirmView.as_view(),
        name="password-reset-confirm",
    ),
    path("email/verify/", accounts.EmailVerifyView.as_view(), name="email-verify"),
    path(
        "email/verify/resend/", accounts.EmailVerifyResendView.as_view(), name="email-verify-resend"
    ),
]
