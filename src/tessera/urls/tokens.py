"""Personal access tokens: create, list, revoke."""

from django.urls import path

from ..views import tokens

urlpatterns = [
    path("tokens/", tokens.PersonalTokenListView.as_view(), name="token-list"),
    path("tokens/<str:token_id>/", tokens.PersonalTokenDetailView.as_view(), name="token-detail"),
]
