"""Middleware: Django's own logins follow their Tessera sessions."""

from __future__ import annotations

import logging

from django.http import JsonResponse

from .errors import ServiceUnavailable, error_body
from .services import django_logins

logger = logging.getLogger("tessera")


class DjangoLoginSessionMiddleware:
    """A browser logged in through ``django.contrib.auth.login`` stays logged in only
    while its Tessera browser session lives: ended by ``DELETE sessions/<id>/``,
    logout-all, a password change or reset, deactivation or an administrator, it is
    logged out on its next request. Place it right after Django's
    ``AuthenticationMiddleware``.

    When the session store, the cache or the database cannot say whether the session
    lives, the answer is 503 with ``Retry-After``: never a page served to a browser that
    may have been logged out.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        bound = django_logins.current_request.set(request)
        try:
            return self._serve(request)
        finally:
            django_logins.current_request.reset(bound)

    def _serve(self, request):
        if django_logins.enabled():
            try:
                django_logins.check_request(request)
            except Exception as exc:
                # The Django session itself is read here, before any view: a database- or
                # cache-backed session store that is down must not become a 500.
                if not isinstance(exc, ServiceUnavailable):
                    logger.error("Session check failed; answering 503.", exc_info=True)
                    exc = ServiceUnavailable()
                response = JsonResponse(error_body(exc), status=503)
                response["Retry-After"] = str(int(exc.wait or 1))
                return response
        return self.get_response(request)
