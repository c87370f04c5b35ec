"""All of Tessera's endpoints: mount with ``path("api/auth/", include("tessera.urls"))``.

Each feature has its own module, so a project can mount only what it offers. Without
public sign-up, for example::

    from django.urls import include, path

    tessera_urls = (
        [
            path("", include("tessera.urls.sessions")),
            path("", include("tessera.urls.accounts")),
            path("", include("tessera.urls.jwt")),
            path("", include("tessera.urls.tokens")),
            path("", include("tessera.urls.mfa")),
        ],
        "tessera",
    )
    urlpatterns = [path("api/auth/", include(tessera_urls))]

Every module's routes share the ``tessera`` namespace, which Tessera's own redirects and
cookies rely on (e.g. ``tessera:jwt-refresh``).
"""

from . import (
    accounts,
    browser,
    events,
    jwt,
    mfa,
    registration,
    sessions,
    social,
    tokens,
    webauthn,
)

app_name = "tessera"

urlpatterns = [
    *sessions.urlpatterns,
    *registration.urlpatterns,
    *accounts.urlpatterns,
    *browser.urlpatterns,
    *jwt.urlpatterns,
    *tokens.urlpatterns,
    *mfa.urlpatterns,
    *webauthn.urlpatterns,
    *events.urlpatterns,
    *social.urlpatterns,
]
