"""Roles, as Django groups: Viewers watch, download, comment and review; Creators also make generations; staff
manage users, budgets and boards. A new account is a Creator until staff say otherwise (migration 0014 made every
existing account one)."""

from functools import wraps

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.core.exceptions import PermissionDenied
from django.db.models.signals import post_migrate, post_save
from django.dispatch import receiver

CREATORS, VIEWERS = "Creators", "Viewers"
MAKE = "generations.make_generation"


def can_make(user) -> bool:
    """Whether `user` may ask Luma for anything (it spends the team's money)."""
    return bool(user and user.is_authenticated and user.is_active and user.has_perm(MAKE))


VIEWER_REFUSAL = ("You are a viewer on this team: you can watch, download, comment and review, but making "
                  "generations (which spends the team's money) is for creators. Ask staff to make you a creator.")
STAFF_REFUSAL = "Only staff manage users, budgets and approvals."


def make_required(view):
    """On a view that asks Luma for something (or prepares to): a 403 page that says why for anyone who may not
    make generations. Put it under @login_required, so a logged-out visitor is sent to log in first."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not can_make(request.user):
            raise PermissionDenied(VIEWER_REFUSAL)
        return view(request, *args, **kwargs)

    return wrapper


def staff_required(view):
    """On a view that manages the team (budgets, approvals): a 403 page for anyone who is not staff."""

    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not (request.user.is_authenticated and request.user.is_active and request.user.is_staff):
            raise PermissionDenied(STAFF_REFUSAL)
        return view(request, *args, **kwargs)

    return wrapper


def role_of(user) -> str:
    """"staff", "creator" or "viewer", as the settings page shows it."""
    if user.is_staff:
        return "staff"
    return "creator" if can_make(user) else "viewer"


def groups() -> tuple[Group, Group]:
    """(Creators, Viewers), made when missing, Creators holding the make permission. Migration 0014 made them; a
    database emptied since (a test flush) gets them back here and after every migrate."""
    creators, _ = Group.objects.get_or_create(name=CREATORS)
    viewers, _ = Group.objects.get_or_create(name=VIEWERS)
    make = Permission.objects.filter(content_type__app_label="generations", codename="make_generation").first()
    if make is not None and not creators.permissions.filter(pk=make.pk).exists():
        creators.permissions.add(make)
    return creators, viewers


def set_role(user, role: str) -> None:
    """Make `user` a creator or a viewer (the group decides; staff keep what they are)."""
    creators, viewers = groups()
    if role == "viewer":
        user.groups.remove(creators)
        user.groups.add(viewers)
    elif role == "creator":
        user.groups.remove(viewers)
        user.groups.add(creators)
    else:
        raise ValueError(f"No such role: {role}")


@receiver(post_save, sender=get_user_model(), dispatch_uid="lumaweb-default-role")
def new_accounts_are_creators(sender, instance, created, raw=False, **kwargs):
    if created and not raw:
        instance.groups.add(groups()[0])


@receiver(post_migrate, dispatch_uid="lumaweb-roles")
def roles_exist(sender, app_config=None, **kwargs):
    """After migrate (and a test database's flush), the roles exist (the permission itself comes back first:
    Django's own post_migrate handler for auth runs before this app's)."""
    if app_config is not None and app_config.name == "generations":
        groups()
