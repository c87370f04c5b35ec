"""A project that mounts Tessera without its JWT endpoints."""

from django.urls import include, path

tessera_urls = (
    [
        path("", include("tessera.urls.sessions")),
        path("", include("tessera.urls.registration")),
        path("", include("tessera.urls.accounts")),
    ],
    "tessera",
)
urlpatterns = [path("api/auth/", include(tessera_urls))]
