"""The workspace's pieces that sit on pages other views render: the header's bell, the library's selection bar
and board switch, a generation's comments. Each asks only what it shows (one or two small queries)."""

from django import template

from .. import boards, notify
from ..models import Profile
from ..views_workspace import comments_context, export_url

register = template.Library()


def _boards(request) -> list:
    """The boards this user sees, read once per request (the switch and the selection bar both list them)."""
    if not hasattr(request, "_lumaweb_boards"):
        request._lumaweb_boards = list(boards.visible_boards(request.user))
    return request._lumaweb_boards


@register.inclusion_tag("generations/notifications_bell.html", takes_context=True)
def bell(context) -> dict:
    user = context["request"].user
    return {"unread_count": notify.unread(user).count(), "notify_browser": Profile.read(user).notify_browser}


@register.inclusion_tag("generations/board_menu.html#selection-bar", takes_context=True)
def selection_bar(context, board=None) -> dict:
    request = context["request"]
    return {"boards": _boards(request), "board": board, "export_url": export_url(),
            "csrf_token": context.get("csrf_token"), "request": request}


@register.inclusion_tag("generations/board_menu.html#board-switch", takes_context=True)
def board_switch(context) -> dict:
    request = context["request"]
    return {"boards": _boards(request), "current": boards.current(request),
            "csrf_token": context.get("csrf_token"), "request": request}


@register.inclusion_tag("generations/comments.html#comments", takes_context=True)
def comments_for(context, generation) -> dict:
    return {**comments_context(generation), "csrf_token": context.get("csrf_token"), "request": context["request"]}
