"""Public sign-up: ``register/``. Leave this module out to run without it."""

from django.urls import path

from ..views import accounts

urlpatterns = [
    path("register/", accounts.RegisterView.as_view(), name="register"),
]
