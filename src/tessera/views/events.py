"""The caller's own audit trail."""

from __future__ import annotations

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


class EventListView(TesseraAPIView):
    """The caller's security events, newest first: logins (and failed ones on their
    account), revocations, changes of password, address and second factors."""

    permission_classes = [IsAuthenticated, IsNotPersonalAccessToken]
    serializer_class = SecurityEventSerializer
    pagination_class = EventPagination

    @document(responses={200: SecurityEventSerializer(many=True), **error_responses(401, 403, 503)})
    def get(self, request):
        page = self.paginate_queryset(audit.events_of(request.user))
        return self.get_paginated_response(self.get_serializer(page, many=True).data)
