"""Admission: which pending generations may be sent to Luma now, under the team's shared limits.

At most LUMA_MAX_CONCURRENT in flight and LUMA_CREATES_PER_MINUTE sends a minute; the queue is served
round-robin across users so one person's batch cannot starve the team.
"""

from collections import Counter
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from .models import Generation, LumaAccount, State


def admission_order(rows: list[Generation]) -> list[Generation]:
    """Round-robin across owners: everyone's oldest first, then everyone's second oldest, and so on."""
    nth = Counter()
    ranked = []
    for row in sorted(rows, key=lambda r: (r.created_at, r.pk)):
        nth[row.owner_id] += 1
        ranked.append((nth[row.owner_id], row.created_at, row.pk, row))
    return [row for *_, row in sorted(ranked, key=lambda item: item[:3])]


def queue_positions() -> dict[int, int]:
    """The 1-based place of every pending row in the admission queue, by primary key."""
    pending = list(Generation.objects.pending().visible().only("pk", "owner_id", "created_at"))
    return {row.pk: place for place, row in enumerate(admission_order(pending), start=1)}


def free_slots(now=None) -> int:
    now = now or timezone.now()
    in_flight = Generation.objects.in_flight().count()
    # Admitted rows count as sent: their create leaves as soon as a worker takes the submit task.
    sent_last_minute = Generation.objects.filter(
        Q(submitted_at__gte=now - timedelta(minutes=1)) | Q(state=State.SUBMITTING, submitted_at__isnull=True)
    ).count()
    return max(0, min(settings.LUMA_MAX_CONCURRENT - in_flight, settings.LUMA_CREATES_PER_MINUTE - sent_last_minute))


def admit() -> list[int]:
    """Move as many pending rows to submitting as the limits allow; returns their ids (for the submit job).

    Runs under a lock on the account row, so two workers admitting at once cannot both take the last slot.
    """
    now = timezone.now()
    with transaction.atomic():
        account = LumaAccount.objects.select_for_update().filter(pk=1).first() or LumaAccount.get()
        if account.paused_until and account.paused_until > now:
            return []
        slots = free_slots(now)
        if not slots:
            return []
        pending = list(Generation.objects.pending().visible().only("pk", "owner_id", "created_at"))
        admitted = [row.pk for row in admission_order(pending)[:slots] if row.admit()]
    return admitted


def pause(seconds: float) -> None:
    """Luma answered 429: no creates for the whole team until Retry-After has passed."""
    until = timezone.now() + timedelta(seconds=max(1.0, seconds))
    LumaAccount.get()
    LumaAccount.objects.filter(pk=1).update(paused_until=until)
