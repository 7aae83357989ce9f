"""Each generation keeps the date it was asked for in the site's time zone (created_day), so spend by day is grouped
by a column read from an index in its order (spend_by_day_idx), not by a date worked out per row; rows made before
get theirs from created_at now. It replaces spend_idx, which the usage query read whole and then sorted."""

from django.conf import settings
from django.db import migrations, models
from django.utils import timezone


def date_existing(apps, schema_editor):
    Generation = apps.get_model("generations", "Generation")
    batch = []
    for row in Generation.objects.only("created_at").iterator(chunk_size=2000):
        row.created_day = timezone.localdate(row.created_at, timezone.get_default_timezone())
        batch.append(row)
        if len(batch) == 2000:
            Generation.objects.bulk_update(batch, ["created_day"])
            batch = []
    Generation.objects.bulk_update(batch, ["created_day"])


class Migration(migrations.Migration):

    dependencies = [
        ("generations", "0017_preparing"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RemoveIndex(
            model_name="generation",
            name="spend_idx",
        ),
        migrations.AddField(
            model_name="generation",
            name="created_day",
            field=models.DateField(editable=False, null=True),
        ),
        migrations.RunPython(date_existing, migrations.RunPython.noop),
        migrations.AddIndex(
            model_name="generation",
            index=models.Index(fields=["created_day", "owner", "model", "state", "price_cents"],
                               name="spend_by_day_idx"),
        ),
    ]
