"""The team's Luma credit balance over time (snapshots taken when the balance is read), reconciled with what
lumaweb estimates its generations cost, so the "me" page can explain any difference."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.utils import timezone

from . import pricing
from .models import CreditSnapshot, Generation, Provider, State

# A balance read is kept when it differs from the last one, and at least this often when it does not.
KEEP_UNCHANGED_EVERY = timedelta(hours=6)


def record_balance(balance: float, now: datetime | None = None) -> bool:
    """Keep a balance just read from Luma (refresh_credits); returns whether a snapshot was written. Repeats of an
    unchanged balance are dropped (one every KEEP_UNCHANGED_EVERY), so a read every few minutes stays a few rows."""
    now = now or timezone.now()
    last = CreditSnapshot.objects.order_by("-taken_at", "-id").first()
    if last is not None and last.balance == balance and last.taken_at > now - KEEP_UNCHANGED_EVERY:
        return False
    CreditSnapshot.objects.create(taken_at=now, balance=balance)
    return True


def usd(cents: float) -> str:
    return f"${cents / 100:,.2f}"


@dataclass
class Reconciliation:
    """Luma's balance change over a period beside lumaweb's estimate for the same period."""

    start: CreditSnapshot
    end: CreditSnapshot
    team_cents: int  # lumaweb's estimate for the whole team's finished generations in the period
    mine_cents: int
    failed: int  # failed or rejected in the period: charged at create, refunded by Luma
    live: int  # still in progress at the end of the period: charged at create, not yet in the estimate

    @property
    def spent_cents(self) -> float:
        """What Luma's balance fell by (negative: it grew, someone topped it up)."""
        return self.start.balance - self.end.balance

    @property
    def difference_cents(self) -> float:
        return self.spent_cents - self.team_cents

    @property
    def matches(self) -> bool:
        """Within a cent: nothing to explain."""
        return abs(self.difference_cents) < 1

    # In dollars, as the page shows them.
    start_usd = property(lambda self: usd(self.start.balance))
    end_usd = property(lambda self: usd(self.end.balance))
    spent_usd = property(lambda self: usd(abs(self.spent_cents)))
    team_usd = property(lambda self: usd(self.team_cents))
    mine_usd = property(lambda self: usd(self.mine_cents))
    difference_usd = property(lambda self: usd(abs(self.difference_cents)))

    @property
    def reasons(self) -> list[str]:
        """Why the two figures may differ, the likeliest first."""
        found = []
        difference = self.difference_cents
        if self.spent_cents < 0:
            found.append("The balance grew: credit was added at Luma during the period.")
        if self.live:
            found.append(f"{self.live} generation{'s are' if self.live != 1 else ' is'} still in progress: Luma "
                         "charges when a generation is asked for, lumaweb counts it once it is done.")
        if self.failed:
            found.append(f"{self.failed} generation{'s' if self.failed != 1 else ''} failed: Luma charges at the "
                         "start and refunds a failure, so a read between the two shows it spent.")
        if difference > 0:
            found.append("Someone may use the same Luma key outside lumaweb (Luma's own app, scripts): that spend "
                         "lowers the balance but is not in lumaweb's estimate.")
        if abs(difference) >= 1:
            found.append("lumaweb's prices are an estimate (Luma's published per-pixel video prices, and rough "
                         "guesses for images and audio, which Luma does not publish); Luma's bill is the truth.")
        return found


def reconcile(user, since: datetime) -> Reconciliation | None:
    """Luma's balance from the last snapshot before `since` (or the first after it) to the newest one, beside
    lumaweb's estimate for generations asked for in between; None until there are two snapshots to compare."""
    start = (CreditSnapshot.objects.filter(taken_at__lte=since).order_by("-taken_at", "-id").first()
             or CreditSnapshot.objects.filter(taken_at__gt=since).order_by("taken_at", "id").first())
    end = CreditSnapshot.objects.order_by("-taken_at", "-id").first()
    if start is None or end is None or start.pk == end.pk:
        return None
    # The balance is Dream Machine's (GET /credits); the Agents API bills another account, so its spend is left out.
    dream = Provider.DREAM_MACHINE
    team = pricing.spend_between(start.taken_at, end.taken_at, provider=dream)
    mine = pricing.spend_between(start.taken_at, end.taken_at, user, provider=dream)
    period = Generation.objects.filter(created_at__gte=start.taken_at, created_at__lt=end.taken_at, provider=dream)
    return Reconciliation(
        start=start,
        end=end,
        team_cents=sum(line.total_cents for line in team),
        mine_cents=sum(line.total_cents for line in mine),
        failed=period.filter(state__in=[State.FAILED, State.REJECTED]).count(),
        live=period.live().count(),
    )
