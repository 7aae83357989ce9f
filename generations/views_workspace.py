"""The team workspace's pages and actions: boards (and a generation's place on them), review marks, comments,
notifications and their settings. Viewers may do all of it: none of it asks Luma for anything."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db import IntegrityError, transaction
from django.db.models import Count
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import replace_url

from . import boards, notify
from .access import generation_for
from .forms import LibraryFilters
from .models import Board, BoardItem, Comment, Generation, Notification, Profile, ShareLink
from .views_library import PAGE_SIZE, _back, build_cards, card_rows, dollars, page_context

NOTIFICATIONS_SHOWN = 100
# A selection posts at most this many generations at once.
MAX_SELECTED = 500


def export_url() -> str:
    """The ZIP export's address (generations:export, built beside these views), or "" until it exists."""
    try:
        return reverse("generations:export")
    except NoReverseMatch:
        return ""


# --- boards --------------------------------------------------------------------------------------------------------


def _listed_boards(request: HttpRequest) -> list[Board]:
    listed = list(boards.visible_boards(request.user))
    counts = dict(BoardItem.objects.filter(board__in=listed, generation__deleted_at__isnull=True)
                  .order_by().values("board").annotate(n=Count("id")).values_list("board", "n"))
    for board in listed:
        board.count = counts.get(board.pk, 0)
        board.changeable = boards.may_change(request.user, board)
    return listed


@login_required
@require_http_methods(["GET", "POST"])
def board_list(request: HttpRequest) -> HttpResponse:
    """The boards this person sees, and a form for a new one."""
    form = boards.BoardForm(request.POST or None, owner=request.user)
    if request.method == "POST" and form.is_valid():
        try:
            board = form.save()
        except IntegrityError:
            pass  # a twin request took the name first; the form says so
        else:
            messages.success(request, f"Made the board “{board.name}”.")
            return redirect(board)
    context = {**page_context(request), "boards": _listed_boards(request), "form": form,
               "current": boards.current(request)}
    return render(request, "generations/boards.html", context, status=400 if form.errors else 200)


def board_cost(request: HttpRequest, board: Board, filters: LibraryFilters) -> dict:
    """What the board's generations the filters leave (all pages) cost: read in the board's items, so it grows with
    the board; the page asks for it in a request of its own (`cost=1`), after the cards."""
    among = filters.apply(Generation.objects.visible(), request.user) if filters.active else None
    cost, done = boards.cost_cents(board, among)
    return {"board": board, "filters": filters, "filter_query": filters.querystring(), "cost": dollars(cost),
            "done": done, "cost_shown": True}


def board_context(request: HttpRequest, board: Board, filters: LibraryFilters) -> dict:
    """The board page: the library's filters and cards, scoped to the board."""
    scoped = filters.apply(card_rows(request.user, boards.on_board(board)), request.user)
    rows = list(scoped[: PAGE_SIZE + 1])
    cards = build_cards(rows[:PAGE_SIZE], request.user)
    more = len(rows) > PAGE_SIZE
    return {
        "board": board,
        "filters": filters,
        "cards": cards,
        "more_query": filters.querystring(before=cards[-1].g.pk) if more else "",
        "filter_query": filters.querystring(),
        "before": filters.value("before"),
        "export_url": export_url(),
    }


@gzip_page
@login_required
@require_GET
def board_page(request: HttpRequest, pk: int) -> HttpResponse:
    """A board: the library scoped to it, with the same filters and search, and the cost of what it holds."""
    board = boards.board_for(request.user, pk)
    filters = LibraryFilters(request.GET)
    wants_cost = request.GET.get("cost") == "1"
    if wants_cost and request.htmx:
        return render(request, "generations/board.html#board-cost", board_cost(request, board, filters))
    context = board_context(request, board, filters)
    if wants_cost:  # without htmx: the page with its cost written in
        context.update(board_cost(request, board, filters))
    if request.htmx and not request.htmx.history_restore_request:
        if filters.value("before"):
            return render(request, "generations/board.html#board-page", context)
        response = render(request, "generations/board.html#board-results", context)
        query = context["filter_query"]
        return replace_url(response, board.get_absolute_url() + (f"?{query}" if query else ""))
    context.update(page_context(request), changeable=boards.may_change(request.user, board),
                   form=boards.BoardForm(instance=board, owner=board.owner or request.user),
                   current=boards.current(request))
    return render(request, "generations/board.html", context)


@login_required
@require_POST
def board_edit(request: HttpRequest, pk: int) -> HttpResponse:
    """Rename a board or change who sees it (its owner or staff)."""
    board = boards.board_for(request.user, pk, change=True)
    was_shared = board.shared
    form = boards.BoardForm(request.POST, instance=board, owner=board.owner or request.user)
    if form.is_valid():
        try:
            form.save()
        except IntegrityError:
            pass
        else:
            stopped = 0
            if was_shared and not board.shared:
                # Private means private: its public links end now, and sharing it again later does not revive them.
                stopped = ShareLink.objects.filter(board=board, revoked_at__isnull=True).update(
                    revoked_at=timezone.now())
            messages.success(request, f"Saved the board “{board.name}”."
                             + (f" Its {stopped} share link{'s' if stopped != 1 else ''} stopped working." if stopped
                                else ""))
            return redirect(board)
    board.refresh_from_db()
    filters = LibraryFilters({})
    context = {**page_context(request), **board_context(request, board, filters), "changeable": True, "form": form,
               "current": boards.current(request)}
    return render(request, "generations/board.html", context, status=400)


@login_required
@require_http_methods(["GET", "POST"])
def board_delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask, then delete a board (its owner or staff). Its generations stay in the library."""
    board = boards.board_for(request.user, pk, change=True)
    if request.method == "POST":
        name = board.name
        board.delete()
        messages.success(request, f"Deleted the board “{name}”. Its generations are still in the library.")
        return redirect("generations:boards")
    count = boards.on_board(board).count()
    return render(request, "generations/board_delete.html", {**page_context(request), "board": board, "count": count})


def _card_boards_context(request: HttpRequest, generation: Generation, note: str = "") -> dict:
    listed = list(boards.visible_boards(request.user))
    items = BoardItem.objects.filter(generation=generation, board__in=listed)
    on = set(items.values_list("board_id", flat=True))
    # A box ticked by someone else on a board that is not this person's is shown, but cannot be unticked here.
    fixed = on - set(boards.removable(request.user, items).values_list("board_id", flat=True))
    # The large player asks for its own copy (?in=lightbox): its ids must not repeat those of the card's menu,
    # which may be open on the same page for the same generation.
    in_lightbox = request.GET.get("in") == "lightbox"
    return {"g": generation, "boards": [(board, board.pk in on, board.pk in fixed) for board in listed], "note": note,
            "menu_id": f"{'lightbox-' if in_lightbox else ''}board-menu-{generation.pk}",
            "menu_query": "?in=lightbox" if in_lightbox else ""}


@login_required
@require_http_methods(["GET", "POST"])
def card_boards(request: HttpRequest, pk: int) -> HttpResponse:
    """Which of the boards this person sees hold a generation: the card's Boards menu (a checkbox each).
    A POST sets them: checked boards hold it, unchecked ones no longer do (only boards this person sees, and only
    entries this person may take off: boards.removable; the menu shows the others ticked and fixed)."""
    generation = generation_for(request.user, pk)
    note = ""
    if request.method == "POST":
        listed = {board.pk: board for board in boards.visible_boards(request.user)}
        wanted = {int(v) for v in request.POST.getlist("board") if v.isdigit() and int(v) in listed}
        before = set(BoardItem.objects.filter(generation=generation, board__in=listed.values())
                     .values_list("board_id", flat=True))
        for board_pk in wanted - before:
            boards.add(listed[board_pk], [generation], request.user)
        unticked = BoardItem.objects.filter(generation=generation, board_id__in=before - wanted)
        removed = set(boards.removable(request.user, unticked).values_list("board_id", flat=True))
        BoardItem.objects.filter(generation=generation, board_id__in=removed).delete()
        changes = ([f"added to “{listed[b].name}”" for b in sorted(wanted - before)]
                   + [f"taken off “{listed[b].name}”" for b in sorted(removed)])
        note = f"#{generation.pk} " + ", ".join(changes) + "." if changes else "No change."
        if not request.htmx:
            messages.success(request, note)
            return redirect(_back(request, generation.get_absolute_url()))
    context = _card_boards_context(request, generation, note)
    if request.htmx:
        return render(request, "generations/board_menu.html#board-menu", context)
    return render(request, "generations/board_menu.html", {**page_context(request), **context})


@login_required
@require_POST
def board_add_selected(request: HttpRequest) -> HttpResponse:
    """Put the generations selected in the library (the selection bar) on a board."""
    ids = [int(v) for v in request.POST.getlist("ids") if v.isdigit()][:MAX_SELECTED]
    board_pk = request.POST.get("to_board", "")
    back = _back(request, reverse("generations:dashboard"))
    board = boards.visible_boards(request.user).filter(pk=board_pk).first() if board_pk.isdigit() else None
    if board is None:
        messages.error(request, "Choose a board to add the selected generations to.")
    elif not ids:
        messages.error(request, "Select at least one generation first (the box on each card).")
    else:
        found = list(Generation.objects.visible().filter(pk__in=ids).values_list("pk", flat=True))
        added = boards.add(board, found, request.user)
        messages.success(request, f"Added {added} to “{board.name}”"
                         + (f" ({len(found) - added} already on it)." if len(found) > added else "."))
    return redirect(back)


@login_required
@require_POST
def board_remove_selected(request: HttpRequest, pk: int) -> HttpResponse:
    """Take the generations selected on a board's page off that board: those this person may take off
    (boards.removable: on their own board, added by them, or any for staff); the library keeps them all."""
    board = boards.board_for(request.user, pk)
    ids = [int(v) for v in request.POST.getlist("ids") if v.isdigit()][:MAX_SELECTED]
    back = _back(request, board.get_absolute_url())
    if not ids:
        messages.error(request, "Select at least one generation first (the box on each card).")
        return redirect(back)
    held = BoardItem.objects.filter(board=board, generation_id__in=ids).count()
    removed = boards.remove(board, ids, request.user)
    kept = held - removed
    messages.success(request, f"Took {removed} off “{board.name}”; they are still in the library."
                     + (f" {kept} added by someone else stay{'s' if kept == 1 else ''}: only whoever added them, "
                        "the board's owner or staff can take them off." if kept else ""))
    return redirect(back)


@login_required
@require_POST
def board_use(request: HttpRequest) -> HttpResponse:
    """Switch the dashboard to a board (what is made there lands on it), or back to no board."""
    board_pk = request.POST.get("board", "")
    board = boards.visible_boards(request.user).filter(pk=board_pk).first() if board_pk.isdigit() else None
    boards.choose(request, board)
    if board is not None:
        messages.success(request, f"What you make now lands on the board “{board.name}”.")
    else:
        messages.success(request, "What you make now goes to the library only.")
    return redirect(_back(request, reverse("generations:dashboard")))


# --- review --------------------------------------------------------------------------------------------------------


@login_required
@require_POST
def review(request: HttpRequest, pk: int) -> HttpResponse:
    """Mark a generation picked or rejected, or clear the mark; records who and when."""
    generation = generation_for(request.user, pk)
    mark = request.POST.get("mark", "")
    if mark not in ("picked", "rejected", ""):
        return HttpResponse("Unknown review mark.", status=400)
    now = timezone.now()
    Generation.objects.filter(pk=generation.pk).update(
        review_mark=mark, reviewed_by=request.user if mark else None, reviewed_at=now if mark else None)
    generation.review_mark = mark
    generation.reviewed_by = request.user if mark else None
    generation.reviewed_at = now if mark else None
    if request.htmx:
        return render(request, "generations/review.html#review", {"g": generation, "show_who": "who" in request.POST})
    return redirect(_back(request, generation.get_absolute_url()))


# --- comments ------------------------------------------------------------------------------------------------------


class CommentForm(forms.Form):
    body = forms.CharField(
        label="Your comment", strip=True, max_length=Comment.MAX_LENGTH,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": "Say something; @name tells a teammate"}),
        error_messages={"required": "Write something first.",
                        "max_length": f"A comment can be at most {Comment.MAX_LENGTH:,} characters "
                                      "(this one has %(show_value)d). Nothing was posted."})


def comments_context(generation: Generation, form: CommentForm | None = None) -> dict:
    rows = generation.comments.select_related("author").prefetch_related("mentions")
    return {"g": generation, "comments": rows, "comment_form": form or CommentForm()}


@login_required
@require_POST
def comment(request: HttpRequest, pk: int) -> HttpResponse:
    """Post a comment; each @name of an active teammate is a mention, and the owner and those mentioned hear of it."""
    generation = generation_for(request.user, pk)
    form = CommentForm(request.POST)
    if form.is_valid():
        with transaction.atomic():
            row = Comment.objects.create(generation=generation, author=request.user, body=form.cleaned_data["body"])
            row.mentions.set(notify.mentioned_users(row.body))
            notify.commented(row)
        if not request.htmx:
            return redirect(generation.get_absolute_url() + "#comments")
        form = None
    context = comments_context(generation, form)
    status = 200 if form is None or request.htmx else 400
    if request.htmx:
        return render(request, "generations/comments.html#comments", context)
    return render(request, "generations/comments.html", {**page_context(request), **context}, status=status)


# --- notifications -------------------------------------------------------------------------------------------------


@login_required
@require_GET
def notifications(request: HttpRequest) -> HttpResponse:
    rows = list(Notification.objects.filter(user=request.user).select_related("generation")[:NOTIFICATIONS_SHOWN])
    return render(request, "generations/notifications.html",
                  {**page_context(request), "notes": rows, "unread": sum(1 for n in rows if n.read_at is None)})


@login_required
@require_POST
def notifications_read(request: HttpRequest) -> HttpResponse:
    """Mark one notification (`id`) or all of them read."""
    unread = notify.unread(request.user)
    note_id = request.POST.get("id", "")
    if note_id.isdigit():
        unread = unread.filter(pk=int(note_id))
    unread.update(read_at=timezone.now())
    return redirect(_back(request, reverse("generations:notifications")))


@login_required
@require_GET
def bell(request: HttpRequest) -> HttpResponse:
    """The header's bell and its unread count (asked for again when a generation ends, as the poll says)."""
    return render(request, "generations/notifications_bell.html",
                  {"unread_count": notify.unread(request.user).count(),
                   "notify_browser": Profile.of(request.user).notify_browser})


@login_required
@require_GET
def notifications_check(request: HttpRequest) -> JsonResponse:
    """What workspace.js asks every 30 s for people who want browser notifications: the unread count and the
    unread notifications newer than `after` (an id), for the browser to show while the tab is in the background."""
    after = request.GET.get("after", "")
    unread = notify.unread(request.user)
    newer = unread.filter(pk__gt=int(after)) if after.isdigit() else unread.none()
    latest = Notification.objects.filter(user=request.user).order_by("-pk").values_list("pk", flat=True).first()
    return JsonResponse({
        "unread": unread.count(),
        "latest": latest or 0,
        "new": [{"id": n.pk, "text": n.text, "url": n.generation.get_absolute_url() if n.generation_id else ""}
                for n in newer.select_related("generation").order_by("pk")[:5]],
    })


class NotifySettingsForm(forms.ModelForm):
    class Meta:
        model = Profile
        fields = ["notify_browser", "notify_email"]
        labels = {"notify_browser": "Browser notifications when this tab is in the background",
                  "notify_email": "E-mail"}


@login_required
@require_http_methods(["GET", "POST"])
def notification_settings(request: HttpRequest) -> HttpResponse:
    """This person's notification choices."""
    profile = Profile.of(request.user)
    form = NotifySettingsForm(request.POST or None, instance=profile)
    if request.method == "POST" and form.is_valid():
        form.save()
        messages.success(request, "Saved your notification settings.")
        return redirect("generations:notification_settings")
    context = {**page_context(request), "form": form, "email": request.user.email}
    return render(request, "generations/notifications_settings.html", context)
