"""Admission: which pending generations may be sent to Luma now, under the team's shared limits.

At most LUMA_MAX_CONCURRENT in flight and LUMA_CREATES_PER_MINUTE sends a minute; the queue is served
round-robin across users so one person's batch cannot starve the team.
"""

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F, Q, QuerySet, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from .models import Generation, LumaAccount, Provider, State


# Queue places are worked out this far; further back, a card says only that it waits behind that many.
SHOWN_PLACES = 500


def in_admission_order(rows: QuerySet) -> QuerySet:
    """Round-robin across owners: everyone's oldest first, then everyone's second oldest, and so on.

    Done by the database (a window function), so the first few places cost the same at any queue length.
    """
    nth = Window(RowNumber(), partition_by=[F("owner_id")], order_by=[F("created_at").asc(), F("pk").asc()])
    return rows.annotate(nth=nth).order_by("nth", "created_at", "pk")


def queue_positions() -> dict[int, int]:
    """The 1-based place of the first SHOWN_PLACES pending rows in the admission queue, by primary key."""
    pending = in_admission_order(Generation.objects.pending().visible()).values_list("pk", flat=True)
    return {pk: place for place, pk in enumerate(pending[:SHOWN_PLACES], start=1)}


# Each of Luma's APIs has its own limits: (max in flight, creates a minute, the account field of its 429 pause).
def limits(provider: str) -> tuple[int, int, str]:
    if provider == Provider.AGENTS:
        return settings.LUMA_AGENTS_MAX_CONCURRENT, settings.LUMA_AGENTS_CREATES_PER_MINUTE, "agents_paused_until"
    return settings.LUMA_MAX_CONCURRENT, settings.LUMA_CREATES_PER_MINUTE, "paused_until"


def free_slots(now=None, provider: str = Provider.DREAM_MACHINE) -> int:
    now = now or timezone.now()
    max_in_flight, per_minute, _ = limits(provider)
    rows = Generation.objects.filter(provider=provider)
    in_flight = rows.in_flight().count()
    # Admitted rows count as sent: their create leaves as soon as a worker takes the submit task.
    sent_last_minute = rows.filter(
        Q(submitted_at__gte=now - timedelta(minutes=1)) | Q(state=State.SUBMITTING, submitted_at__isnull=True)
    ).count()
    return max(0, min(max_in_flight - in_flight, per_minute - sent_last_minute))


def admit() -> list[int]:
    """Move as many pending rows to submitting as each provider's limits allow; returns their ids (for the
    submit job). One provider's pause or full slots never hold back the other's queue.

    Runs under a lock on the account row, so two workers admitting at once cannot both take the last slot.
    """
    now = timezone.now()
    admitted = []
    with transaction.atomic():
        account = LumaAccount.objects.select_for_update().filter(pk=1).first() or LumaAccount.get()
        for provider in Provider.values:
            paused_until = getattr(account, limits(provider)[2])
            if paused_until and paused_until > now:
                continue
            slots = free_slots(now, provider)
            if not slots:
                continue
            pending = Generation.objects.pending().visible().filter(provider=provider)
            admitted += [row.pk for row in in_admission_order(pending).only("pk")[:slots] if row.admit()]
    return admitted


def pause(seconds: float, provider: str = Provider.DREAM_MACHINE) -> None:
    """Luma answered 429: no creates to that API for the whole team until Retry-After has passed."""
    until = timezone.now() + timedelta(seconds=max(1.0, seconds))
    LumaAccount.get()
    LumaAccount.objects.filter(pk=1).update(**{limits(provider)[2]: until})
