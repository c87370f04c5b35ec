"""Tessera's HTTP endpoints. Views only parse input, call a service and shape output."""

from .base import TesseraAPIView
from .sessions import (
    LoginView,
    LogoutAllView,
    LogoutView,
    NotMeView,
    ObtainAuthTokenView,
    SessionDetailView,
    SessionListView,
    obtain_auth_token,
)

__all__ = [
    "LoginView",
    "LogoutAllView",
    "LogoutView",
    "NotMeView",
    "ObtainAuthTokenView",
    "SessionDetailView",
    "SessionListView",
    "TesseraAPIView",
    "obtain_auth_token",
]
