"""The one view every variant serves: as cheap as a view can be, so the difference
between two variants is the cost of their authentication."""

from collections.abc import Callable

from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView


class PingView(APIView):
    """Answers ``{"ok": true}``; ``as_view`` sets the authentication per variant."""

    authentication_classes = ()
    permission_classes = (AllowAny,)

    def get(self, request):
        return Response({"ok": True})


def protected_by(authentication_classes: list) -> Callable:
    """The view behind ``authentication_classes``, or open to all when there are none."""
    return PingView.as_view(
        authentication_classes=authentication_classes,
        permission_classes=[IsAuthenticated] if authentication_classes else [AllowAny],
    )
