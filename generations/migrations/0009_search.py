from django.db import migrations


class Migration(migrations.Migration):
    """Prompt search that scales (filled in by the search work)."""

    dependencies = [("generations", "0008_uploaded_media")]

    operations = []
