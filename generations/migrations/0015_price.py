"""Each generation keeps the price estimated when it was requested (price_cents). Rows made before are priced now, as
pricing.estimate_cents prices them today: one UPDATE per price where the price depends only on kind, model,
resolution and duration (Dream Machine), row by row where it depends on the options too (the Agents API's HDR,
EXR export and references)."""

from django.db import migrations, models


def price_existing(apps, schema_editor):
    from generations.pricing import AGENTS_MODELS, estimate_cents

    Generation = apps.get_model("generations", "Generation")
    shapes = (Generation.objects.exclude(model__in=AGENTS_MODELS)
              .values_list("kind", "model", "resolution", "duration").distinct().order_by())
    for kind, model, resolution, duration in list(shapes):
        Generation.objects.filter(kind=kind, model=model, resolution=resolution, duration=duration).update(
            price_cents=estimate_cents(kind, model, resolution, duration))
    batch = []
    for row in Generation.objects.filter(model__in=AGENTS_MODELS).only(
            "kind", "model", "resolution", "duration", "options").iterator(chunk_size=2000):
        row.price_cents = estimate_cents(row.kind, row.model, row.resolution, row.duration, row.options or {})
        batch.append(row)
        if len(batch) == 2000:
            Generation.objects.bulk_update(batch, ["price_cents"])
            batch = []
    Generation.objects.bulk_update(batch, ["price_cents"])


class Migration(migrations.Migration):

    dependencies = [
        ("generations", "0014_roles"),
    ]

    operations = [
        migrations.AddField(
            model_name="generation",
            name="price_cents",
            field=models.PositiveIntegerField(default=0),
        ),
        migrations.RunPython(price_existing, migrations.RunPython.noop),
    ]
