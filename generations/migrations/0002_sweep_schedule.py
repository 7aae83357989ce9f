"""The periodic sweep exists as a django-q2 Schedule right after migrate, with no manual set-up."""

from django.db import migrations

SWEEP = "generations.tasks.sweep"


def add_sweep(apps, schema_editor):
    Schedule = apps.get_model("django_q", "Schedule")
    if not Schedule.objects.filter(func=SWEEP).exists():
        # "I" is django-q2's MINUTES type; its scheduler wakes about every 30 s, so once a minute is as
        # often as a Schedule can run.
        Schedule.objects.create(name="lumaweb sweep", func=SWEEP, schedule_type="I", minutes=1, repeats=-1)


def remove_sweep(apps, schema_editor):
    apps.get_model("django_q", "Schedule").objects.filter(func=SWEEP).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0001_initial"),
        ("django_q", "0019_alter_task_options_alter_ormq_key_alter_ormq_lock_and_more"),
    ]

    operations = [migrations.RunPython(add_sweep, remove_sweep)]
