"""The caller's audit trail."""

from django.urls import path

from ..views.events import EventListView

urlpatterns = [
    path("events/", EventListView.as_view(), name="event-list"),
]
