"""Mount with ``path("api/auth/", include("tessera.urls"))``."""

from django.urls import path

from . import views
from .views import accounts, browser, jwt, tokens

app_name = "tessera"

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("logout/all/", views.LogoutAllView.as_view(), name="logout-all"),
    path("sessions/", views.SessionListView.as_view(), name="session-list"),
    path("sessions/<str:session_id>/", views.SessionDetailView.as_view(), name="session-detail"),
    path("register/", accounts.RegisterView.as_view(), name="register"),
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
    path("csrf/", browser.CsrfView.as_view(), name="csrf"),
    path("session/login/", browser.SessionLoginView.as_view(), name="session-login"),
    path("session/logout/", browser.SessionLogoutView.as_view(), name="session-logout"),
    path("jwt/", jwt.JWTObtainView.as_view(), name="jwt-obtain"),
    path("jwt/refresh/", jwt.JWTRefreshView.as_view(), name="jwt-refresh"),
    path("jwt/verify/", jwt.JWTVerifyView.as_view(), name="jwt-verify"),
    path("jwt/sliding/", jwt.SlidingObtainView.as_view(), name="jwt-sliding"),
    path("jwt/sliding/refresh/", jwt.SlidingRefreshView.as_view(), name="jwt-sliding-refresh"),
    path("jwt/jwks/", jwt.JWKSView.as_view(), name="jwt-jwks"),
    path("tokens/", tokens.PersonalTokenListView.as_view(), name="token-list"),
    path("tokens/<str:token_id>/", tokens.PersonalTokenDetailView.as_view(), name="token-detail"),
]
