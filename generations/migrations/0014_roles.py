"""Roles as Django groups: Viewers watch, download, comment and review; Creators also make generations. Everyone
who already had an account keeps making things (they become Creators); staff manage users, budgets and boards."""

from django.db import migrations

CREATORS, VIEWERS = "Creators", "Viewers"


def add_roles(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    User = apps.get_model(*__import__("django.conf").conf.settings.AUTH_USER_MODEL.split("."))
    content_type, _ = ContentType.objects.get_or_create(app_label="generations", model="generation")
    make, _ = Permission.objects.get_or_create(codename="make_generation", content_type=content_type,
                                               defaults={"name": "Can make generations (spends the team's money)"})
    creators, _ = Group.objects.get_or_create(name=CREATORS)
    creators.permissions.add(make)
    Group.objects.get_or_create(name=VIEWERS)
    for user in User.objects.all():
        user.groups.add(creators)


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=[CREATORS, VIEWERS]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("generations", "0013_workspace"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(add_roles, remove_roles)]
