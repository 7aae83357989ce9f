from django.db import migrations


class Migration(migrations.Migration):
    """Uploaded media (keyframes, references, source videos) for the new modes. Filled in by the modes work."""

    dependencies = [("generations", "0007_modes")]

    operations = []
