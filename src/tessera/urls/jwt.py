"""JWT: obtain, refresh, verify, sliding tokens and the public key set."""

from django.urls import path

from ..views import jwt

urlpatterns = [
    path("jwt/", jwt.JWTObtainView.as_view(), name="jwt-obtain"),
    path("jwt/refresh/", jwt.JWTRefreshView.as_view(), name="jwt-refresh"),
    path("jwt/verify/", jwt.JWTVerifyView.as_view(), name="jwt-verify"),
    path("jwt/sliding/", jwt.SlidingObtainView.as_view(), name="jwt-sliding"),
    path("jwt/sliding/refresh/", jwt.SlidingRefreshView.as_view(), name="jwt-sliding-refresh"),
    path("jwt/jwks/", jwt.JWKSView.as_view(), name="jwt-jwks"),
]
