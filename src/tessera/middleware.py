"""Middleware: Django's own logins follow their Tessera sessions."""

from __future__ import annotations

from django.http import JsonResponse

from .errors import ServiceUnavailable, error_body
from .services import django_logins


class DjangoLoginSessionMiddleware:
    """A browser logged in through ``django.contrib.auth.login`` stays logged in only
    while its Tessera browser session lives: ended by ``DELETE sessions/<id>/``,
    logout-all, a password change or reset, deactivation or an administrator, it is
    logged out on its next request. Place it right after Django's
    ``AuthenticationMiddleware``.

    When neither the cache nor the database can say whether the session lives, the
    answer is 503 with ``Retry-After``: never a page served to a browser that may have
    been logged out.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if django_logins.enabled():
            try:
                django_logins.check_request(request)
            except ServiceUnavailable as exc:
                response = JsonResponse(error_body(exc), status=503)
                response["Retry-After"] = str(int(exc.wait or 1))
                return response
        return self.get_response(request)
