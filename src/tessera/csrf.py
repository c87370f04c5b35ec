"""CSRF enforcement for credentials a browser sends by itself (cookies).

The same check Django's CsrfViewMiddleware makes, run from an authentication class or
view, as DRF's SessionAuthentication does: a request authenticated by a cookie is only
trusted when it also proves it came from the site's own pages.
"""

from __future__ import annotations

from django.middleware.csrf import CsrfViewMiddleware

from .errors import CsrfFailed


class _CSRFCheck(CsrfViewMiddleware):
    def _reject(self, request, reason):
        return reason


def enforce_csrf(request) -> None:
    """Raise 403 ``csrf_failed`` when an unsafe request lacks a valid CSRF token."""
    check = _CSRFCheck(lambda req: None)
    check.process_request(request)
    reason = check.process_view(request, None, (), {})
    if reason:
        raise CsrfFailed(f"CSRF Failed: {reason}")
