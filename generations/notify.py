"""Notifications: a generation of mine finished or failed, someone commented on it or mentioned me. Each becomes a
row (the bell, the list page, the browser's notice) and an e-mail for those who opted in."""

from __future__ import annotations

import logging
import re

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import send_mail
from django.db import transaction
from django.db.models import Q

from .models import Comment, Generation, Notification, Profile, State

log = logging.getLogger(__name__)

# Django's usernames: letters, digits and @ . + - _ ; a mention ends before a trailing full stop.
MENTION = re.compile(r"(?<![\w@.+-])@([\w.@+-]{1,150})")
MAX_MENTIONS = 20


def mentioned_users(body: str) -> list:
    """The active users an `@username` in `body` names (case-insensitive; unknown names are plain text)."""
    names = list(dict.fromkeys(name.rstrip(".").lower() for name in MENTION.findall(body)))[:MAX_MENTIONS]
    if not names:
        return []
    any_of = Q()
    for name in names:
        any_of |= Q(username__iexact=name)
    found = {user.get_username().lower(): user for user in get_user_model().objects.filter(any_of, is_active=True)}
    return [found[name] for name in names if name in found]


def _link(generation: Generation) -> str:
    return settings.PUBLIC_BASE_URL.rstrip("/") + generation.get_absolute_url()


def _tell(user, what: str, generation: Generation, text: str) -> Notification:
    note = Notification.objects.create(user=user, what=what, generation=generation, text=text[:300])
    if user.email and Profile.of(user).notify_email:
        # After the commit: the mail goes out for a row that exists, and a rolled-back comment sends nothing.
        transaction.on_commit(lambda: _mail(user, note, generation))
    return note


def _mail(user, note: Notification, generation: Generation) -> None:
    try:
        send_mail(f"lumaweb: {note.text[:120]}", f"{note.text}\n\n{_link(generation)}\n\n"
                  "You get these because you asked for e-mail notifications in lumaweb's settings.",
                  None, [user.email])
    except Exception:  # a mail server that is down must not undo the notice in the page
        log.exception("could not e-mail notification %s to %s", note.pk, user.pk)


def generation_ended(pk: int) -> Notification | None:
    """Tell a generation's owner it finished or failed (rejected counts as failed). Idempotent: at most one
    notification per generation and outcome, however often it is called (the row is locked while checking); a
    generation failed locally that Luma later completes gets both. None when there is nothing (new) to say."""
    with transaction.atomic():
        # Lock only the generation's row (owner is nullable: PostgreSQL refuses FOR UPDATE on an outer join).
        generation = Generation.objects.select_for_update(of=("self",)).filter(pk=pk).select_related("owner").first()
        if generation is None or generation.owner is None or not generation.owner.is_active:
            return None
        if generation.state == State.COMPLETED:
            what, verb = Notification.What.FINISHED, "is done"
        elif generation.state in (State.FAILED, State.REJECTED):
            what, verb = Notification.What.FAILED, "failed"
        else:
            return None
        if Notification.objects.filter(user=generation.owner, what=what, generation=generation).exists():
            return None
        prompt = generation.prompt[:80] or "(no prompt)"
        return _tell(generation.owner, what, generation, f"#{generation.pk} {verb}: {prompt}")


def commented(comment: Comment) -> list[Notification]:
    """Tell the generation's owner about a comment, and each person it mentions (a mentioned owner hears once,
    as a mention); nobody hears about their own comment."""
    generation, author = comment.generation, comment.author
    who = author.get_username() if author else "someone"
    told, notes = set(), []
    excerpt = " ".join(comment.body.split())[:120]
    for user in comment.mentions.filter(is_active=True):
        if user.pk != getattr(author, "pk", None):
            notes.append(_tell(user, Notification.What.MENTION, generation,
                               f"{who} mentioned you on #{generation.pk}: {excerpt}"))
            told.add(user.pk)
    owner = generation.owner
    if owner is not None and owner.is_active and owner.pk not in told and owner.pk != getattr(author, "pk", None):
        notes.append(_tell(owner, Notification.What.COMMENT, generation,
                           f"{who} commented on #{generation.pk}: {excerpt}"))
    return notes


def unread(user):
    return Notification.objects.filter(user=user, read_at__isnull=True)
