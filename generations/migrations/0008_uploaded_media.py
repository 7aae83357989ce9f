from django.db import migrations, models


class Migration(migrations.Migration):
    """Uploaded media (keyframes, references, source videos) for the new modes: what kind of file, and for a
    video its duration, codec and size as PyAV read them."""

    dependencies = [("generations", "0007_modes")]

    operations = [
        migrations.AddField(
            model_name="keyframeimage",
            name="codec",
            field=models.CharField(blank=True, max_length=20),
        ),
        migrations.AddField(
            model_name="keyframeimage",
            name="duration",
            field=models.FloatField(blank=True, help_text="Seconds (videos).", null=True),
        ),
        migrations.AddField(
            model_name="keyframeimage",
            name="media_type",
            field=models.CharField(choices=[("image", "Image"), ("video", "Video")], default="image", max_length=10),
        ),
        migrations.AddField(
            model_name="keyframeimage",
            name="size",
            field=models.BigIntegerField(blank=True, help_text="Bytes stored.", null=True),
        ),
    ]
