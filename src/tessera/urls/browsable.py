"""Drop-in for ``rest_framework.urls``: ``path("api-auth/", include("tessera.urls.browsable"))``.

Logging in here opens a Tessera browser session (see :mod:`tessera.browsable`); the
browsable API then authenticates with ``tessera.authentication.SessionAuthentication``.
"""

from django.urls import path

from ..browsable import LoginView, LogoutView

app_name = "rest_framework"

urlpatterns = [
    path("login/", LoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
]
