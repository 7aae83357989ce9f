"""Monthly budgets, per person and for the team, in US dollars (cents here), checked before anything reaches Luma.

Spend counts every generation made this month that Luma may bill: finished ones and ones still on their way, each
at the price estimated when it was requested (pricing.py, kept in Generation.price_cents). Failed and rejected ones
are not counted (Luma refunds them), nor ones held for approval until staff let them go. A request that would take
someone over a budget is refused with a clear message, or held for staff to approve when the team chose that policy.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django import forms
from django.contrib.auth import get_user_model
from django.db.models import Count, Sum
from django.utils import timezone

from .models import Generation, LumaAccount, Profile, State
from .pricing import MODEL_NAMES, month_start

WARN_AT = 0.8  # a budget 80% used says so
# Luma refunds failures; a request held for approval has not reached Luma (if staff approve it, it counts then).
NOT_BILLED = (State.FAILED, State.REJECTED, State.HELD)


def _spent(rows) -> int:
    # Each row's own price (Generation.price_cents, options included), as the check that admitted it counted it.
    return rows.exclude(state__in=NOT_BILLED).order_by().aggregate(cents=Sum("price_cents"))["cents"] or 0


def spent_cents(user=None, now=None) -> int:
    """What `user` (or the whole team) has spent this month, in US cents (failed and rejected not counted)."""
    rows = Generation.objects.filter(created_day__gte=month_start(now).date())
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


def standings(user, spend: Usage | None = None) -> list[Standing]:
    """The budgets that apply to `user`'s next request: their own, then the team's (only those that are set).
    `spend`, this month's usage when the caller has it already, saves counting the month again."""
    found = []
    profile = Profile.read(user) if user is not None else None
    if profile is not None and profile.monthly_budget_cents is not None:
        mine = spend.by_person.get(user.get_username(), 0) if spend is not None else spent_cents(user)
        found.append(Standing("you", profile.monthly_budget_cents, mine))
    team = LumaAccount.get().team_budget_cents
    if team is not None:
        found.append(Standing("the team", team, spend.total_cents if spend is not None else spent_cents()))
    return found


class OverBudget(Exception):
    """A request would take someone over a budget; the message says by how much, in words a person reads."""


def wait_for_other_checks() -> None:
    """Inside the transaction that checks a budget and then saves the request: wait until any other such transaction
    has committed (a row lock on the team's account on PostgreSQL; SQLite lets one writer in at a time anyway), so
    two requests at the same moment cannot both spend the same room left."""
    LumaAccount.objects.select_for_update().get_or_create(pk=1)  # the one account row (LumaAccount.get)


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


# --- budgets typed in dollars (the admin and the settings page) ------------------------------------------------------

DOLLARS = re.compile(r"^\$?\s*(-?)\s*(\d{1,7}(?:,\d{3})*|\d+)?(?:\.(\d{0,2}))?$")


def parse_dollars(text: str) -> int | None:
    """A budget as a person types it ("250", "$1,200", "12.5") in US cents; "" is no budget (None). Raises
    ValueError with a sentence to show when it is negative or not an amount."""
    text = (text or "").strip()
    if not text:
        return None
    found = DOLLARS.match(text)
    if not found or not (found.group(2) or found.group(3)):
        raise ValueError(f"“{text[:40]}” is not an amount of dollars: enter a number such as 250 or 12.50, "
                         "or leave it empty for no budget.")
    cents = int((found.group(2) or "0").replace(",", "")) * 100 + int((found.group(3) or "0").ljust(2, "0"))
    if found.group(1) and cents:
        raise ValueError("A budget cannot be negative: enter 0 or more dollars, or leave it empty for no budget.")
    if cents > 2**31 - 1:
        raise ValueError("That budget is too large: enter at most $21,474,836.47.")
    return cents


def dollars_text(cents: int | None) -> str:
    """A budget as the form shows it again: "12.50", or "" for none."""
    return "" if cents is None else f"{cents / 100:.2f}"


class DollarsField(forms.CharField):
    """A budget in dollars; cleans to US cents (None when left empty)."""

    def __init__(self, **kwargs):
        kwargs.setdefault("required", False)
        kwargs.setdefault("max_length", 20)
        super().__init__(**kwargs)
        self.widget.attrs.setdefault("inputmode", "decimal")

    def prepare_value(self, value):
        return dollars_text(value) if isinstance(value, int) else value

    def clean(self, value):
        value = super().clean(value)
        try:
            return parse_dollars(value)
        except ValueError as error:
            raise forms.ValidationError(str(error), code="invalid") from error


# --- the usage page ---------------------------------------------------------------------------------------------------


def month_bounds(month: str = "", now: datetime | None = None) -> tuple[datetime, datetime]:
    """The start and end of a month ("YYYY-MM"; empty: this month) in the site's time zone. ValueError (with a
    sentence) for anything else."""
    if not month:
        start = month_start(now)
    else:
        found = re.fullmatch(r"(\d{4})-(\d{2})", month.strip())
        if not found or not 1 <= int(found.group(2)) <= 12 or not 2000 <= int(found.group(1)) <= 2999:
            raise ValueError(f"“{month[:20]}” is not a month: write it as YYYY-MM, such as 2026-12.")
        start = timezone.make_aware(datetime(int(found.group(1)), int(found.group(2)), 1))
    end = timezone.make_aware(datetime(start.year + start.month // 12, start.month % 12 + 1, 1))
    return start, end


@dataclass
class Usage:
    """Spend in one month (US cents, failed and rejected generations not counted), by person, model and day."""

    start: datetime
    end: datetime
    by_person: dict[str, int] = field(default_factory=dict)
    by_model: dict[str, int] = field(default_factory=dict)
    by_day: dict[date, int] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)  # generations by person
    rows: list[tuple[date, str, str, int, int]] = field(default_factory=list)  # day, person, model, count, cents

    @property
    def total_cents(self) -> int:
        return sum(self.by_person.values())

    @property
    def generations(self) -> int:
        return sum(self.counts.values())

    @property
    def month(self) -> str:
        return f"{self.start:%Y-%m}"


def model_name(model: str) -> str:
    return MODEL_NAMES.get(model, model or "unknown")


def usage(start: datetime, end: datetime) -> Usage:
    """Spend from `start` to `end` (local midnights), priced the way budgets count it (`spent_cents`): one grouped
    query, read from spend_by_day_idx in its order, so it costs about the same at 100 or 100,000 generations (the
    groups are days x people x models)."""
    # The site's days, as each row's created_day counts them (TIME_ZONE's, whatever zone is active).
    zone = timezone.get_default_timezone()
    first, last = timezone.localdate(start, zone), timezone.localdate(end, zone)
    rows = Generation.objects.filter(created_day__gte=first, created_day__lt=last).exclude(state__in=NOT_BILLED)
    groups = list(rows.values_list("created_day", "owner_id", "model")
                  .annotate(count=Count("*"), cents=Sum("price_cents")).order_by())  # *: read from the index alone
    names = dict(get_user_model().objects.filter(pk__in={group[1] for group in groups})
                 .values_list("pk", "username"))
    result = Usage(start, end)
    by_person, by_model, by_day, counts = defaultdict(int), defaultdict(int), defaultdict(int), defaultdict(int)
    detail: dict[tuple[date, str, str], list[int]] = defaultdict(lambda: [0, 0])
    dates = [first + timedelta(days=n) for n in range((last - first).days)]
    for day, owner_id, model, count, cents in groups:
        person, model = names.get(owner_id, "(deleted account)"), model_name(model)
        by_person[person] += cents
        by_model[model] += cents
        by_day[day] += cents
        counts[person] += count
        line = detail[day, person, model]
        line[0] += count
        line[1] += cents
    result.by_person = dict(sorted(by_person.items(), key=lambda item: (-item[1], item[0])))
    result.by_model = dict(sorted(by_model.items(), key=lambda item: (-item[1], item[0])))
    result.by_day = {day: by_day.get(day, 0) for day in dates}
    result.counts = dict(counts)
    result.rows = [(d, p, m, c, cents) for (d, p, m), (c, cents) in sorted(detail.items())]
    return result
