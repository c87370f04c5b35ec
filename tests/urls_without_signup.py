"""A project that mounts Tessera without public sign-up (the README's recipe)."""

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
