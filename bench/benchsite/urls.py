"""One path per variant, ``/<slug>/``, and Tessera's login and logout under ``auth/``."""

from django.urls import include, path
from django.utils.module_loading import import_string

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
    path("auth/", include(("tessera.urls.sessions", "tessera"))),
]
