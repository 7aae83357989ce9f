"""Roles, as Django groups: Viewers watch, download, comment and review; Creators also make generations; staff
manage users, budgets and boards. A new account is a Creator until staff say otherwise (migration 0014 made every
existing account one)."""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db.models.signals import post_save
from django.dispatch import receiver

CREATORS, VIEWERS = "Creators", "Viewers"
MAKE = "generations.make_generation"


def can_make(user) -> bool:
    """Whether `user` may ask Luma for anything (it spends the team's money)."""
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(MAKE))


@receiver(post_save, sender=get_user_model(), dispatch_uid="lumaweb-default-role")
def new_accounts_are_creators(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        group = Group.objects.filter(name=CREATORS).first()
        if group is not None:
            instance.groups.add(group)
