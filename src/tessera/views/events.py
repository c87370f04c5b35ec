"""The caller's own audit trail."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.permissions import IsAuthenticated

from ..permissions import IsNotPersonalAccessToken
from ..schema import document
from ..serializers.events import SecurityEventSerializer
from ..services import audit
from .base import TesseraAPIView, error_responses


class EventPagination(CursorPagination):
    """Newest first; a cursor stays stable while new events arrive."""

    ordering = ("-created_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 200

    def paginate_queryset(self, queryset, request, view=None):
        # DRF refuses a cursor it cannot decode (404) but filters by the position of one
        # it can, so a well-formed cursor naming no time reaches the database as a bad
        # value: that is the same invalid cursor.
        try:
            return super().paginate_queryset(queryset, request, view)
        except (DjangoValidationError, ValueError, OverflowError):
            raise NotFound(self.invalid_cursor_message) from None


class EventListView(TesseraAPIView):
    """The caller's security events, newest first: logins (and failed ones on their
    account), revocations, changes of password, address and second factors. A cursor
    that is not one this endpoint gave answers 404."""

    permission_classes = [IsAuthenticated, IsNotPersonalAccessToken]
    serializer_class = SecurityEventSerializer
    pagination_class = EventPagination

    def get_queryset(self):
        return audit.events_of(self.request.user)

    @document(
        responses={200: SecurityEventSerializer(many=True), **error_responses(401, 403, 404, 503)}
    )
    def get(self, request):
        page = self.paginate_queryset(self.get_queryset())
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
