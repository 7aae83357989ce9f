"""Monthly budgets, per person and for the team, in US dollars (cents here), checked before anything reaches Luma.

Spend counts every generation made this month that Luma may bill: finished ones and ones still on their way
(estimated with pricing.py). Failed and rejected ones are not counted: Luma refunds them. A request that would take
someone over a budget is refused with a clear message, or held for staff to approve when the team chose that policy.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Count

from .models import Generation, LumaAccount, Profile, State
from .pricing import estimate_cents, month_start

WARN_AT = 0.8  # a budget 80% used says so
NOT_BILLED = (State.FAILED, State.REJECTED)


def _spent(rows) -> int:
    groups = (rows.exclude(state__in=NOT_BILLED).values("kind", "model", "resolution", "duration")
              .annotate(count=Count("id")).order_by())
    return sum(estimate_cents(g["kind"], g["model"], g["resolution"], g["duration"]) * g["count"] for g in groups)


def spent_cents(user=None, now=None) -> int:
    """What `user` (or the whole team) has spent this month, in US cents (failed and rejected not counted)."""
    rows = Generation.objects.filter(created_at__gte=month_start(now))
    if user is not None:
        rows = rows.filter(owner=user)
    return _spent(rows)


def usd(cents: float) -> str:
    return f"${cents / 100:,.2f}"


@dataclass
class Standing:
    """One budget this month: whose, how much, how much is used."""

    label: str  # "you" or "the team"
    budget_cents: int
    spent_cents: int

    @property
    def left_cents(self) -> int:
        return max(self.budget_cents - self.spent_cents, 0)

    @property
    def share(self) -> float:
        return self.spent_cents / self.budget_cents if self.budget_cents else 1.0

    @property
    def warning(self) -> str:
        if self.share >= WARN_AT:
            return (f"{self.label.capitalize()} {'have' if self.label == 'you' else 'has'} used {self.share:.0%} of "
                    f"{'your' if self.label == 'you' else 'its'} {usd(self.budget_cents)} budget this month.")
        return ""


def standings(user) -> list[Standing]:
    """The budgets that apply to `user`'s next request: their own, then the team's (only those that are set)."""
    found = []
    profile = Profile.objects.filter(user=user).first() if user is not None else None
    if profile is not None and profile.monthly_budget_cents is not None:
        found.append(Standing("you", profile.monthly_budget_cents, spent_cents(user)))
    team = LumaAccount.get().team_budget_cents
    if team is not None:
        found.append(Standing("the team", team, spent_cents()))
    return found


class OverBudget(Exception):
    """A request would take someone over a budget; the message says by how much, in words a person reads."""


def check(user, cost_cents: int) -> str:
    """'' when `cost_cents` more fits every budget `user` is under; else why not ("you have $4.10 left this month;
    this costs about $5.25")."""
    for standing in standings(user):
        if standing.spent_cents + cost_cents > standing.budget_cents:
            who = "you have" if standing.label == "you" else "the team has"
            return (f"Over budget: {who} {usd(standing.left_cents)} left this month; this costs about "
                    f"{usd(cost_cents)}.")
    return ""


def hold_for_approval() -> bool:
    return LumaAccount.get().budget_policy == "approval"
