from django.contrib import admin
from django.urls import include, path

from demo import views
from tessera.views import obtain_auth_token

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/auth/", include("tessera.urls")),
    path("api-token-auth/", obtain_auth_token, name="api-token-auth"),
    path("api/protected/", views.ProtectedView.as_view(), name="protected"),
    path("api/admin-content/", views.AdminContentView.as_view(), name="admin-content"),
    path("api/manager-content/", views.ManagerContentView.as_view(), name="manager-content"),
    path("api/hr-content/", views.HRContentView.as_view(), name="hr-content"),
]
