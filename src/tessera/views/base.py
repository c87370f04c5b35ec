from __future__ import annotations

from django.utils.module_loading import import_string
from rest_framework import generics

from ..authentication import TokenAuthentication
from ..conf import tessera_settings
from ..errors import exception_handler
from ..parsers import JSONParser


class TesseraAPIView(generics.GenericAPIView):
    """Base of every Tessera endpoint.

    Whatever the project's DRF settings, Tessera's endpoints answer errors in Tessera's
    shape, read bounded JSON, and keep 401 a 401 (DRF turns it into 403 when no
    authentication class announces a ``WWW-Authenticate`` challenge).
    """

    authentication_classes = [TokenAuthentication]
    parser_classes = [JSONParser]
    throttle_classes: list = []

    def get_exception_handler(self):
        return exception_handler

    def get_authenticate_header(self, request):
        fallback = TokenAuthentication().authenticate_header(request)
        return super().get_authenticate_header(request) or fallback

    def user_data(self, user) -> dict:
        serializer_class = import_string(tessera_settings.USER_SERIALIZER)
        return serializer_class(user, context=self.get_serializer_context()).data
