from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import (
    SpectacularAPIView,
    SpectacularRedocView,
    SpectacularSwaggerView,
)

from demo import views
from tessera.views import obtain_auth_token

COLLECTION = {"get": "list", "post": "create"}
ITEM = {"get": "retrieve", "put": "update", "patch": "partial_update", "delete": "destroy"}

urlpatterns = [
    path("", views.DemoPage.as_view(), name="demo"),
    path("admin/", admin.site.urls),
    # The browsable API's Log in / Log out, as Tessera browser sessions.
    path("api-auth/", include("tessera.urls.browsable")),
    path("api/auth/", include("tessera.urls")),
    path("api-token-auth/", obtain_auth_token, name="api-token-auth"),
    path("api/protected/", views.ProtectedView.as_view(), name="protected"),
    path("api/admin-content/", views.AdminContentView.as_view(), name="admin-content"),
    path("api/manager-content/", views.ManagerContentView.as_view(), name="manager-content"),
    path("api/hr-content/", views.HRContentView.as_view(), name="hr-content"),
    path("api/posts/", views.PostViewSet.as_view(COLLECTION), name="post-list"),
    path("api/posts/<int:pk>/", views.PostViewSet.as_view(ITEM), name="post-detail"),
    path("api/my-posts/", views.MyPostViewSet.as_view(COLLECTION), name="my-post-list"),
    path("api/my-posts/<int:pk>/", views.MyPostViewSet.as_view(ITEM), name="my-post-detail"),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path(
        "api/redoc/",
        SpectacularRedocView.as_view(url_name="schema", template_name="demo/redoc.html"),
        name="redoc",
    ),
    path("passkeys/", views.PasskeysPage.as_view(), name="passkeys"),
    path("social/", views.SocialPage.as_view(), name="social"),
]
