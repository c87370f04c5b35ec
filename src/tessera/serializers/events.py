from __future__ import annotations

from rest_framework import serializers

from ..models import EventOutcome, EventType, SecurityEvent


class SecurityEventSerializer(serializers.ModelSerializer):
    """One event of the caller's own history. ``session`` is the id of the session it
    concerns (as in ``sessions/``), which may have been deleted since."""

    # Text, not an enum in the schema: an enum named "type" would collide with the
    # second factors' "type" there. The values are listed here and in docs/audit.md.
    type = serializers.CharField(
        read_only=True, help_text="One of: " + ", ".join(EventType.values) + "."
    )
    outcome = serializers.ChoiceField(choices=EventOutcome.choices, read_only=True)
    time = serializers.DateTimeField(source="created_at", read_only=True)
    session = serializers.UUIDField(source="session_id", read_only=True, allow_null=True)
    detail = serializers.DictField(read_only=True)

    class Meta:
        model = SecurityEvent
        fields = ["id", "type", "outcome", "time", "ip", "user_agent", "session", "detail"]
        read_only_fields = fields
