import django.utils.timezone
from django.db import migrations, models


class Migration(migrations.Migration):
    """Luma's credit balance over time (credits.CreditSnapshot), to reconcile with lumaweb's estimates."""

    dependencies = [("generations", "0009_search")]

    operations = [
        migrations.CreateModel(
            name="CreditSnapshot",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("taken_at", models.DateTimeField(db_index=True, default=django.utils.timezone.now)),
                ("balance", models.FloatField(help_text="USD cents, as Luma reports it.")),
            ],
            options={"ordering": ["taken_at", "id"]},
        ),
    ]
