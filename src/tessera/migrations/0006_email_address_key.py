"""EmailAddress is unique on its address's normal form (NFKC, then case-folded).

The old index, on ``LOWER(email)``, meant different things on SQLite (ASCII letters only)
and PostgreSQL (the server locale's rules), and both differed from the sign-up check. The
key is computed in Python, so every database holds the same rule.

Rows that share a key were look-alike claims on one address, which the old index let
through: the verified row (else the oldest) keeps the claim and the others are deleted.
Their accounts are untouched; they are just no longer verified for that address.
"""

import unicodedata

from django.db import migrations, models
from django.db.models import Count

BATCH = 500


def _key(value: str) -> str:
    # tessera.models.identity_key as of this migration: a migration keeps its meaning when
    # the code moves on.
    return unicodedata.normalize("NFKC", value).casefold()


def fill_keys(apps, schema_editor) -> None:
    EmailAddress = apps.get_model("tessera", "EmailAddress")
    rows = EmailAddress.objects.using(schema_editor.connection.alias)
    batch = []
    for row in rows.only("pk", "email").order_by("pk").iterator(chunk_size=BATCH):
        row.key = _key(row.email)
        batch.append(row)
        if len(batch) == BATCH:
            rows.bulk_update(batch, ["key"])
            batch = []
    rows.bulk_update(batch, ["key"])
    shared = rows.values("key").annotate(claims=Count("pk")).filter(claims__gt=1)
    for key in shared.values_list("key", flat=True):
        claims = rows.filter(key=key).order_by(
            models.F("verified_at").asc(nulls_last=True), "pk"
        )
        keeper = claims.values_list("pk", flat=True)[0]
        claims.exclude(pk=keeper).delete()


class Migration(migrations.Migration):

    dependencies = [
        ("tessera", "0005_pending_cache_invalidation"),
    ]

    operations = [
        migrations.AddField(
            model_name="emailaddress",
            name="key",
            field=models.TextField(default="", editable=False),
            preserve_default=False,
        ),
        migrations.RunPython(fill_keys, migrations.RunPython.noop),
        migrations.RemoveConstraint(
            model_name="emailaddress",
            name="tessera_email_address_unique",
        ),
        migrations.AddConstraint(
            model_name="emailaddress",
            constraint=models.UniqueConstraint(
                fields=("key",), name="tessera_email_address_key_unique"
            ),
        ),
    ]
