"""Login with opaque tokens, logout, and the session list."""

from django.urls import path

from .. import views

urlpatterns = [
    path("login/", views.LoginView.as_view(), name="login"),
    path("logout/", views.LogoutView.as_view(), name="logout"),
    path("logout/all/", views.LogoutAllView.as_view(), name="logout-all"),
    path("sessions/", views.SessionListView.as_view(), name="session-list"),
    # Before sessions/<id>/, which would take "not-me" for a session id.
    path("sessions/not-me/", views.NotMeView.as_view(), name="session-not-me"),
    path("sessions/<str:session_id>/", views.SessionDetailView.as_view(), name="session-detail"),
]
