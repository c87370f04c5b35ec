"""One path per variant, ``/<slug>/``, and under ``auth/`` Tessera's login, logout and
session list, its profile (``me/``) and its JWT endpoints, which bench/load.py exercises."""

from django.urls import include, path
from django.utils.module_loading import import_string

import tessera.urls as tessera_urls

from .variants import VARIANTS
from .views import protected_by

urlpatterns = [
    *(
        path(
            f"{variant.slug}/",
            protected_by([import_string(dotted) for dotted in variant.authentication]),
            name=variant.slug,
        )
        for variant in VARIANTS
    ),
    path(
        "auth/",
        include(
            (
                [
                    *tessera_urls.sessions.urlpatterns,
                    *tessera_urls.accounts.urlpatterns,
                    *tessera_urls.jwt.urlpatterns,
                ],
                "tessera",
            )
        ),
    ),
]
