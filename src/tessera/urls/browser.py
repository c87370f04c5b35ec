"""Browser sessions for single-page apps: the CSRF cookie, session login and logout."""

from django.urls import path

from ..views import browser

urlpatterns = [
    path("csrf/", browser.CsrfView.as_view(), name="csrf"),
    path("session/login/", browser.SessionLoginView.as_view(), name="session-login"),
    path("session/logout/", browser.SessionLogoutView.as_view(), name="session-logout"),
]
