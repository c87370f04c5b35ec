"""Social sign-in: SOCIAL_PROVIDERS names the providers (docs/social.md).

Mounting this module offers sign-in with them; with no provider configured every
provider route answers 404 ``social_provider_unknown``.
"""

from django.urls import path

from ..views import social

urlpatterns = [
    path("social/accounts/", social.SocialAccountListView.as_view(), name="social-accounts"),
    path(
        "social/accounts/<str:identity_id>/",
        social.SocialAccountDetailView.as_view(),
        name="social-account-detail",
    ),
    path("social/exchange/", social.SocialExchangeView.as_view(), name="social-exchange"),
    path(
        "social/<str:provider>/authorize/",
        social.SocialAuthorizeView.as_view(),
        name="social-authorize",
    ),
    path(
        "social/<str:provider>/callback/",
        social.SocialCallbackView.as_view(),
        name="social-callback",
    ),
    path(
        "social/<str:provider>/token/", social.SocialTokenLoginView.as_view(), name="social-token"
    ),
    path("social/<str:provider>/link/", social.SocialLinkView.as_view(), name="social-link"),
]
