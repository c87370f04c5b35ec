"""Every route Tessera mounts, read from the URLconf so a new route is covered unasked."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.urls import URLPattern, URLResolver, get_resolver, reverse

# Any id: routes taking one answer 404 for an unknown id, after authentication ran.
SOME_ID = "00000000-0000-0000-0000-000000000000"


@dataclass(frozen=True)
class Route:
    name: str  # with its namespaces, for reverse()
    view_class: type
    arguments: tuple[str, ...]

    def url(self, **kwargs: str) -> str:
        return reverse(
            self.name, kwargs={name: kwargs.get(name, SOME_ID) for name in self.arguments}
        )

    @property
    def methods(self) -> list[str]:
        """The HTTP methods the view implements, OPTIONS aside."""
        view = self.view_class
        return [m for m in view.http_method_names if m != "options" and hasattr(view, m)]


def tessera_routes() -> list[Route]:
    _, resolver = get_resolver().namespace_dict["tessera"]
    return sorted(_walk(resolver, "tessera:"), key=lambda route: route.name)


def _walk(resolver: URLResolver, namespace: str) -> Iterator[Route]:
    for pattern in resolver.url_patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _walk(pattern, inner)
        elif isinstance(pattern, URLPattern):
            yield Route(
                f"{namespace}{pattern.name}",
                pattern.callback.view_class,
                tuple(pattern.pattern.converters),
            )
