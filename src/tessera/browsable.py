"""Login and logout for DRF's browsable API, through Tessera.

A drop-in for ``rest_framework.urls``: the same ``rest_framework:login`` and
``rest_framework:logout`` names and DRF's own login template, so the browsable API shows
its Log in / Log out links. The password is checked by
:func:`tessera.services.login.check_credentials` (the same throttles, the hasher run once,
inactive users refused), and the login goes through Django's ``login()``, which
:mod:`tessera.services.django_logins` records as a Tessera browser session: listed in
``sessions/``, revocable, effective on the next request.

A form cannot ask for a second factor: users who have one, or whom MFA_REQUIRED covers,
are told to log in through the API instead.
"""

from __future__ import annotations

from django import forms
from django.conf import global_settings, settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import AuthenticationForm
from django.utils.translation import gettext_lazy as _
from rest_framework.exceptions import APIException

from .errors import InvalidCredentials, MFANotSupported
from .services import login as login_service


class TesseraAuthenticationForm(AuthenticationForm):
    """Django's login form, with the credentials checked by Tessera's login rules."""

    error_messages = {
        **AuthenticationForm.error_messages,
        "mfa_not_supported": _(
            "This account has a second factor, which this form cannot ask for: log in "
            "through the API (login/, then mfa/authenticate/)."
        ),
    }

    def clean(self):
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        if username is None or password is None:
            return self.cleaned_data
        try:
            user = login_service.check_credentials(self.request, username, password)
            login_service.require_password_only_account(user)
        except InvalidCredentials:
            raise self.get_invalid_login_error() from None
        except MFANotSupported:
            raise forms.ValidationError(
                self.error_messages["mfa_not_supported"], code="mfa_not_supported"
            ) from None
        except APIException as exc:
            # Throttled, locked out, unverified address, a service down: its own message.
            raise forms.ValidationError(str(exc.detail), code=str(exc.get_codes())) from None
        self.user_cache = user
        return self.cleaned_data


class LoginView(auth_views.LoginView):
    """Without ``?next=``, to LOGIN_REDIRECT_URL if the project set one, else to ``/``:
    Django's default (``/accounts/profile/``) is a page a project rarely has."""

    template_name = "rest_framework/login.html"
    authentication_form = TesseraAuthenticationForm

    def get_default_redirect_url(self) -> str:
        if self.next_page is None and (
            settings.LOGIN_REDIRECT_URL == global_settings.LOGIN_REDIRECT_URL
        ):
            return "/"
        return super().get_default_redirect_url()


class LogoutView(auth_views.LogoutView):
    pass
