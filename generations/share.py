"""Share links: a public, unguessable address for one archived generation or one board, playable without a login.

The token is the only credential. A share page shows the player, the prompt, the kind and the date, and links to
nothing else of the site; its media answer only for what was shared, only while the link is live. A link to a board
works only while the team sees the board: once its owner makes it private, the link stops.

/shares/ lists my live links, those others made to my generations and boards, and for staff every other one of the
team; whoever made a link, the owner of what it shares, and staff may revoke it.
"""

from __future__ import annotations

import mimetypes
from datetime import timedelta

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db.models import F, Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import boards
from .access import generation_for
from .files import ranged_file_response
from .models import Board, Generation, ShareLink, State

# How long a new link lives, as offered when it is made (days, label); the first is not the default.
LIFETIMES = {1: "1 day", 7: "7 days", 30: "30 days"}
DEFAULT_DAYS = 7
BOARD_PAGE_SIZE = 24


def _public_headers(response: HttpResponse) -> HttpResponse:
    """Nothing of a share is kept by a cache or a browser (a revoke must stop it at once), indexed by a search
    engine, or told to the next site in a Referer."""
    response["Cache-Control"] = "private, no-store"
    response["X-Robots-Tag"] = "noindex, nofollow"
    response["Referrer-Policy"] = "no-referrer"
    return response


def _shareable_board(user, pk: int) -> Board:
    """The board `pk` if `user` may share it (its owner, or staff): 404 if they cannot see it (a private board is
    its owner's alone, staff included), 403 if they may only look."""
    board = get_object_or_404(boards.visible_boards(user), pk=pk)
    if not boards.may_change(user, board):
        raise PermissionDenied("Only the board's owner or staff may share a board.")
    return board


def board_not_shareable(board: Board) -> str:
    """Why `board` cannot be shared by link, in plain words; "" when it can. A link to a private board does not
    work (the owner keeps it to themselves), so none is made."""
    if not board.shared:
        return (f"“{board.name}” is private, so a share link to it would not work. Share it with the team first "
                f"(Rename or share), then make the link.")
    return ""


def may_revoke(user, link: ShareLink) -> bool:
    """Whoever made the link, staff, or the owner of the generation or board it shares."""
    if user.is_staff or link.created_by_id == user.pk:
        return True
    shared = link.generation if link.generation_id else link.board
    return shared is not None and shared.owner_id is not None and shared.owner_id == user.pk


def not_shareable(generation: Generation) -> str:
    """Why `generation` cannot be shared yet, in plain words; "" when it can."""
    what = "video" if generation.is_video else "image"
    if generation.state in (State.FAILED, State.REJECTED):
        return f"#{generation.pk} failed, so there is no {what} to share."
    if not generation.is_archived:
        return (f"#{generation.pk} is not archived yet: a share link plays our own copy, so it can be made once the "
                f"{what} is kept here.")
    return ""


def _days(request: HttpRequest) -> int | None:
    try:
        days = int(request.POST.get("days", DEFAULT_DAYS))
    except (TypeError, ValueError):
        return None
    return days if days in LIFETIMES else None


def _create(request: HttpRequest, *, generation: Generation | None = None, board: Board | None = None,
            context: dict) -> HttpResponse:
    if request.method == "POST":
        days = _days(request)
        if days is None:
            context["error"] = "Choose how long the link works: 1 day, 7 days or 30 days."
        else:
            link = ShareLink.objects.create(generation=generation, board=board, created_by=request.user,
                                            expires_at=timezone.now() + timedelta(days=days))
            messages.success(request, f"Share link made; it works for {LIFETIMES[days]} unless you revoke it.")
            return redirect(f"{reverse('generations:shares')}#share-{link.pk}")
    return render(request, "generations/share_new.html",
                  {**context, "lifetimes": LIFETIMES, "default_days": DEFAULT_DAYS},
                  status=400 if context.get("error") else 200)


@login_required
@require_http_methods(["GET", "POST"])
def share_generation(request: HttpRequest, pk: int) -> HttpResponse:
    """Make a share link for one generation: any team member, for an archived generation they can see."""
    generation = generation_for(request.user, pk)
    refusal = not_shareable(generation)
    if refusal:
        messages.error(request, refusal)
        return redirect(generation.get_absolute_url())
    return _create(request, generation=generation, context={"generation": generation})


@login_required
@require_http_methods(["GET", "POST"])
def share_board(request: HttpRequest, pk: int) -> HttpResponse:
    """Make a share link for one board: its owner or staff, while the team sees the board."""
    board = _shareable_board(request.user, pk)
    refusal = board_not_shareable(board)
    if refusal:
        messages.error(request, refusal)
        return redirect(board)
    return _create(request, board=board, context={"board": board})


def _stopped(link: ShareLink) -> str:
    """Why a live link shows nothing at the moment, in plain words; "" while it works."""
    if link.board_id and not link.board.shared:
        return "Not working: the board is private now."
    if link.generation_id and link.generation.deleted_at is not None:
        return f"Not working: #{link.generation_id} was deleted."
    return ""


@login_required
@require_GET
def shares(request: HttpRequest) -> HttpResponse:
    """Live links, with their views and a revoke button: mine; those others made to my generations and boards; and
    for staff every other one of the team. A link to a private board is listed to its maker and the board's owner
    only, as the board is its owner's alone."""
    user = request.user
    live = (ShareLink.objects.filter(revoked_at__isnull=True, expires_at__gt=timezone.now())
            .select_related("generation", "board", "created_by").order_by("-created_at"))
    to_mine = Q(generation__owner=user) | Q(board__owner=user)
    others = live.exclude(created_by=user)
    team = others.exclude(to_mine).exclude(board__shared=False) if user.is_staff else ShareLink.objects.none()

    def rows(links):
        return [{"link": link, "stopped": _stopped(link),
                 "url": request.build_absolute_uri(reverse("generations:share_page", args=[link.token]))}
                for link in links]

    return render(request, "generations/share_list.html",
                  {"rows": rows(live.filter(created_by=user)), "to_mine": rows(others.filter(to_mine)),
                   "team": rows(team)})


@login_required
@require_POST
def revoke(request: HttpRequest, pk: int) -> HttpResponse:
    """Stop a link at once: its maker, the owner of what it shares, or staff."""
    link = get_object_or_404(ShareLink.objects.select_related("generation", "board"), pk=pk)
    if not may_revoke(request.user, link):
        raise PermissionDenied("Only whoever made a share link, the owner of what it shares, or staff may revoke it.")
    if ShareLink.objects.filter(pk=pk, revoked_at__isnull=True).update(revoked_at=timezone.now()):
        messages.success(request, "Link revoked: it stopped working now.")
    else:
        messages.info(request, "That link was already revoked.")
    return redirect("generations:shares")


# --- what anyone with the link sees ---------------------------------------------------------------------------------


def _live_link(token: str) -> tuple[ShareLink | None, HttpResponse | None]:
    """The live link for `token`, or the page that says why there is none (404 unknown, 410 revoked, expired, or
    to a board its owner has made private)."""
    link = ShareLink.objects.select_related("generation", "board").filter(token=token).first()
    if link is None:
        return None, _gone("This link does not exist", "Check that the address was copied whole.", 404)
    if link.revoked_at is not None:
        return None, _gone("This link was revoked", "Someone on the team has stopped sharing it.", 410)
    if link.expires_at <= timezone.now():
        return None, _gone("This link has expired", "Share links work for a limited time. Ask for a new one.", 410)
    if link.board_id and not link.board.shared:  # made private since: the owner keeps it to themselves now
        return None, _gone("This board is no longer shared", "Its owner has made it private, so this link stopped "
                                                              "working.", 410)
    return link, None


def _gone(title: str, text: str, status: int) -> HttpResponse:
    """The share's own "gone" page: the site's 404 page would link into the app."""
    response = HttpResponse(render_to_string("generations/share_gone.html", {"title": title, "text": text}),
                            status=status)
    return _public_headers(response)


def _shared_generations(link: ShareLink):
    """What the link shows: its generation, or the board's generations, each only while archived and not deleted."""
    rows = Generation.objects.visible().filter(archive_state=Generation.ArchiveState.DONE).exclude(archive_file="")
    if link.generation_id:
        return rows.filter(pk=link.generation_id)
    return rows.filter(board_items__board=link.board_id)


@require_GET
def share_page(request: HttpRequest, token: str) -> HttpResponse:
    """The public page: the players, prompts, kinds and dates, and nothing that leads into the site."""
    link, refusal = _live_link(token)
    if refusal:
        return refusal
    rows = _shared_generations(link)
    if link.generation_id and not rows.exists():
        return _gone("This is no longer available", "What was shared here has been removed.", 410)
    page = Paginator(rows, BOARD_PAGE_SIZE).get_page(request.GET.get("page")) if link.board_id else None
    ShareLink.objects.filter(pk=link.pk).update(views=F("views") + 1)
    context = {"link": link, "token": token, "page": page, "items": list(page) if page is not None else list(rows)}
    return _public_headers(render(request, "generations/share.html", context))


def _shared_file(request: HttpRequest, token: str, pk: int, field: str) -> HttpResponse:
    """A file of a generation the live link `token` shares, or a bare 404 (the site's 404 page links into it)."""
    link, refusal = _live_link(token)
    generation = None if refusal else _shared_generations(link).filter(pk=pk).first()
    stored = getattr(generation, field) if generation else None
    content_type = "image/jpeg" if field == "poster" else mimetypes.guess_type(stored.name if stored else "")[0]
    try:
        if not stored:
            raise Http404("Not part of this share")
        return _public_headers(ranged_file_response(request, stored, content_type or "video/mp4"))
    except Http404:
        return _gone("Not found", "There is nothing shared at this address.", 404)


@require_GET
def share_media(request: HttpRequest, token: str, pk: int) -> HttpResponse:
    """The shared video or image, with Range for seeking; media requests are not counted as views."""
    return _shared_file(request, token, pk, "archive_file")


@require_GET
def share_poster(request: HttpRequest, token: str, pk: int) -> HttpResponse:
    return _shared_file(request, token, pk, "poster")
