"""Boards (projects): who sees and changes which, putting generations on and off them, the board a person is
making for (`current_board` in the session, `land`), and what a board's generations cost."""

from __future__ import annotations

from django import forms
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Sum
from django.shortcuts import get_object_or_404

from .models import Board, BoardItem, Generation, State

SESSION_KEY = "current_board"


def visible_boards(user) -> QuerySet[Board]:
    """Shared boards and this user's private ones (a private board is its owner's alone, staff included)."""
    return Board.objects.filter(Q(shared=True) | Q(owner=user)).select_related("owner")


def may_change(user, board: Board) -> bool:
    """Renaming, sharing and deleting a board: its owner and staff. Anyone who sees a board may add to it (and take
    off what they added: removable)."""
    return bool(user.is_staff or (board.owner_id is not None and board.owner_id == user.pk))


def board_for(user, pk: int, *, change: bool = False) -> Board:
    """The board `pk` if `user` may see it (404 otherwise); with change=True, 403 for anyone but its owner and
    staff."""
    board = get_object_or_404(visible_boards(user), pk=pk)
    if change and not may_change(user, board):
        raise PermissionDenied("Only the board's owner or staff may change it.")
    return board


class BoardForm(forms.ModelForm):
    """A board's name and whether the team sees it; a name is unique per owner whatever its case."""

    class Meta:
        model = Board
        fields = ["name", "shared"]
        labels = {"name": "Board name", "shared": "Shared with the team"}
        error_messages = {"name": {"required": "Give the board a name.",
                                   "max_length": "A board name can be at most 80 characters."}}

    def __init__(self, *args, owner, **kwargs):
        super().__init__(*args, **kwargs)
        self.owner = owner
        self.fields["name"].widget.attrs.update({"maxlength": 80, "autocomplete": "off"})

    def clean_name(self) -> str:
        name = " ".join(self.cleaned_data["name"].split())
        if not name:
            raise forms.ValidationError("Give the board a name.")
        taken = Board.objects.filter(owner=self.owner, name__iexact=name).exclude(pk=self.instance.pk)
        if taken.exists():
            raise forms.ValidationError(f"You already have a board called “{name}”. Choose another name.")
        return name

    def validate_unique(self):
        pass  # clean_name checks the case-insensitive rule the database enforces, with a message in words

    def save(self, commit: bool = True) -> Board:
        board = super().save(commit=False)
        if board.owner_id is None:
            board.owner = self.owner
        if commit:
            try:
                with transaction.atomic():
                    board.save()
            except IntegrityError:  # a twin request won the race for the name
                self.add_error("name", f"You already have a board called “{board.name}”. Choose another name.")
                raise
        return board


def add(board: Board, generations, by) -> int:
    """Put generations on a board; those already on it stay as they were. Returns how many were added."""
    pks = [g.pk if isinstance(g, Generation) else int(g) for g in generations]
    present = set(BoardItem.objects.filter(board=board, generation_id__in=pks).values_list("generation_id", flat=True))
    new = [BoardItem(board=board, generation_id=pk, added_by=by) for pk in dict.fromkeys(pks) if pk not in present]
    BoardItem.objects.bulk_create(new, ignore_conflicts=True)
    return len(new)


def removable(user, items: QuerySet[BoardItem]) -> QuerySet[BoardItem]:
    """The board entries among `items` that `user` may take off: on boards they own, ones they added themselves,
    or any, for staff. Anyone who sees a board may add to it, but not empty what others put there."""
    if user.is_staff:
        return items
    return items.filter(Q(board__owner=user) | Q(added_by=user))


def remove(board: Board, generations, by) -> int:
    """Take generations off a board, those `by` may take off (removable); returns how many went."""
    pks = [g.pk if isinstance(g, Generation) else int(g) for g in generations]
    deleted, _ = removable(by, BoardItem.objects.filter(board=board, generation_id__in=pks)).delete()
    return deleted


def on_board(board: Board) -> QuerySet[Generation]:
    """The board's visible generations (newest first, as the library)."""
    return Generation.objects.visible().filter(Exists(BoardItem.objects.filter(board=board, generation=OuterRef("pk"))))


def current(request) -> Board | None:
    """The board the dashboard makes for (the session's `current_board`), if this user may still see it."""
    pk = request.session.get(SESSION_KEY)
    if not pk:
        return None
    board = visible_boards(request.user).filter(pk=pk).first()
    if board is None:
        request.session.pop(SESSION_KEY, None)  # deleted, or made private by its owner
    return board


def choose(request, board: Board | None) -> None:
    if board is None:
        request.session.pop(SESSION_KEY, None)
    else:
        request.session[SESSION_KEY] = board.pk


def land(row: Generation, request) -> Board | None:
    """Put a newly made generation (with every take of its set, for "Make N") on the board the maker's dashboard is
    switched to; returns that board, or None when the dashboard is not switched to one (or the board is gone or no
    longer visible to the maker)."""
    board = current(request)
    if board is not None:
        rows = list(Generation.objects.filter(owner=row.owner, batch=row.batch)) if row.batch else [row]
        add(board, rows, request.user)
    return board


def cost_cents(board: Board, among: QuerySet[Generation] | None = None) -> tuple[int, int]:
    """(estimated cents, how many) for the board's completed generations (those `among` the filtered rows, when
    given): one query adding up their prices (Generation.price_cents) as the usage figures do. It reads
    from the board's items, so an unfiltered board costs the same query whatever the library's size."""
    items = BoardItem.objects.filter(board=board, generation__state=State.COMPLETED,
                                     generation__deleted_at__isnull=True)
    if among is not None:
        items = items.filter(generation__in=among)
    found = items.order_by().aggregate(total=Sum("generation__price_cents"), done=Count("id"))
    return found["total"] or 0, found["done"]
