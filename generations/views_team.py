"""The team's money: the usage page (charts drawn as SVG here, numbers as CSV), and for staff the budget settings and
the queue of requests held over budget for approval."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

from django import forms
from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from . import budgets, roles
from .export import spreadsheet_cell
from .models import Generation, GenerationEvent, LumaAccount, Profile, State
from .views_library import page_context

# --- charts -----------------------------------------------------------------------------------------------------------

CHART_WIDTH = 640
LABEL_WIDTH = 150  # horizontal bars: the name on the left
VALUE_WIDTH = 90  # and the amount after the longest bar
ROW_HEIGHT = 26
DAY_CHART_HEIGHT = 180


@dataclass
class Bar:
    label: str
    cents: int
    x: float
    y: float
    width: float
    height: float

    @property
    def usd(self) -> str:
        return budgets.usd(self.cents)

    @property
    def end_x(self) -> float:
        return round(self.x + self.width, 1)


def across(values: dict[str, int]) -> dict:
    """A horizontal bar chart (person, model): one row per name, bars scaled to the largest."""
    top = max(values.values(), default=0) or 1
    room = CHART_WIDTH - LABEL_WIDTH - VALUE_WIDTH
    bars = [Bar(label, cents, LABEL_WIDTH, i * ROW_HEIGHT + 4, round(room * cents / top, 1), ROW_HEIGHT - 8)
            for i, (label, cents) in enumerate(values.items())]
    return {"bars": bars, "width": CHART_WIDTH, "height": max(len(bars), 1) * ROW_HEIGHT,
            "label_x": LABEL_WIDTH - 8, "text_dy": ROW_HEIGHT / 2 - 4}


def upright(values: dict, plot_height: int = DAY_CHART_HEIGHT) -> dict:
    """A column chart (per day): one column per day of the month, scaled to the busiest day."""
    top = max(values.values(), default=0) or 1
    step = CHART_WIDTH / max(len(values), 1)
    bars = []
    for i, (day, cents) in enumerate(values.items()):
        height = round((plot_height - 10) * cents / top, 1)
        bars.append(Bar(f"{day:%b} {day.day}", cents, round(i * step + 1, 1), plot_height - height,
                        round(step - 2, 1), height))
    ticks = [{"x": round(bar.x + bar.width / 2, 1), "text": i + 1} for i, bar in enumerate(bars) if i % 5 == 0]
    return {"bars": bars, "width": CHART_WIDTH, "height": plot_height + 18, "base": plot_height,
            "tick_y": plot_height + 14, "ticks": ticks}


# --- usage ------------------------------------------------------------------------------------------------------------


def _month(request: HttpRequest) -> tuple[str, tuple]:
    """The month asked for (?month=YYYY-MM, else this one) and any complaint about it."""
    try:
        return "", budgets.month_bounds(request.GET.get("month", ""))
    except ValueError as error:
        return str(error), budgets.month_bounds("")


def _shift(start, months: int) -> str:
    index = start.year * 12 + start.month - 1 + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


@login_required
@require_GET
def usage(request: HttpRequest) -> HttpResponse:
    """Spend this month (or ?month=YYYY-MM) per person, per model and per day; the whole team may look."""
    problem, (start, end) = _month(request)
    spend = budgets.usage(start, end)
    this_month = start == budgets.month_bounds("")[0]
    context = {
        **page_context(request),
        "spend": spend,
        "problem": problem,
        "by_person": across(spend.by_person),
        "by_model": across(spend.by_model),
        "by_day": upright(spend.by_day),
        "previous": _shift(start, -1),
        "next": _shift(start, 1),
        "standings": budgets.standings(request.user, spend) if this_month else [],
        "held": Generation.objects.visible().filter(state=State.HELD).count() if request.user.is_staff else 0,
    }
    return render(request, "generations/usage.html", context, status=400 if problem else 200)


@login_required
@require_GET
def usage_csv(request: HttpRequest) -> HttpResponse:
    """The numbers behind the usage charts: one line per day, person and model (generations and US dollars)."""
    problem, (start, end) = _month(request)
    if problem:
        return HttpResponse(problem, status=400, content_type="text/plain; charset=utf-8")
    spend = budgets.usage(start, end)
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["day", "person", "model", "generations", "usd"])
    for day, person, model, count, cents in spend.rows:
        writer.writerow([day.isoformat(), spreadsheet_cell(person), spreadsheet_cell(model), count, f"{cents / 100:.2f}"])
    response = HttpResponse(out.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="lumaweb-usage-{spend.month}.csv"'
    return response


# --- budget settings (staff) ------------------------------------------------------------------------------------------

ROLE_CHOICES = [("creator", "Creator"), ("viewer", "Viewer")]


class BudgetSettingsForm(forms.Form):
    """The team's budget and policy, and each person's budget and role, on one page."""

    team_budget = budgets.DollarsField(label="Team budget a month (US dollars)",
                                       help_text="Empty: no team budget.")
    policy = forms.ChoiceField(label="A request over a budget is", choices=LumaAccount._meta.get_field(
        "budget_policy").choices)

    def __init__(self, *args, people, account: LumaAccount, **kwargs):
        super().__init__(*args, **kwargs)
        self.people = people
        self.fields["team_budget"].initial = account.team_budget_cents
        self.fields["policy"].initial = account.budget_policy
        budgets_by_user = dict(Profile.objects.filter(user__in=people).values_list("user_id", "monthly_budget_cents"))
        for person in people:
            self.fields[f"budget_{person.pk}"] = budgets.DollarsField(
                label=f"{person.get_username()}'s budget a month (US dollars)",
                initial=budgets_by_user.get(person.pk))
            if not person.is_staff:
                self.fields[f"role_{person.pk}"] = forms.ChoiceField(
                    label=f"{person.get_username()}'s role", choices=ROLE_CHOICES, initial=roles.role_of(person))

    def rows(self):
        for person in self.people:
            yield {"person": person, "budget": self[f"budget_{person.pk}"],
                   "role": self[f"role_{person.pk}"] if not person.is_staff else None}

    @transaction.atomic
    def save(self) -> None:
        data = self.cleaned_data
        LumaAccount.get()
        LumaAccount.objects.filter(pk=1).update(team_budget_cents=data["team_budget"], budget_policy=data["policy"])
        for person in self.people:
            Profile.objects.update_or_create(user=person,
                                             defaults={"monthly_budget_cents": data[f"budget_{person.pk}"]})
            if f"role_{person.pk}" in data:
                roles.set_role(person, data[f"role_{person.pk}"])


@login_required
@roles.staff_required
@require_http_methods(["GET", "POST"])
def settings_budgets(request: HttpRequest) -> HttpResponse:
    """Staff set the team's budget and policy and each person's budget and role. A mistake anywhere changes
    nothing and says what to fix."""
    account = LumaAccount.get()
    people = list(get_user_model().objects.filter(is_active=True).order_by("username"))
    form = BudgetSettingsForm(request.POST or None, people=people, account=account)
    if request.method == "POST":
        if form.is_valid():
            form.save()
            messages.success(request, "Budgets saved.")
            return redirect("generations:settings_budgets")
        messages.error(request, "Nothing was changed: fix the budgets marked below.")
    context = {**page_context(request, account), "form": form, "standings": budgets.standings(None)}
    return render(request, "generations/settings_budgets.html", context, status=400 if form.errors else 200)


# --- approvals (staff) ------------------------------------------------------------------------------------------------


@login_required
@roles.staff_required
@require_GET
def approvals(request: HttpRequest) -> HttpResponse:
    """Requests held over budget, oldest first, each with what it would cost and why it waits."""
    held = list(Generation.objects.visible().filter(state=State.HELD).select_related("owner")
                .order_by("created_at", "pk"))
    for row in held:
        row.cost = budgets.usd(row.price_cents)
    return render(request, "generations/approvals.html", {**page_context(request), "held": held})


def _held(pk: int) -> Generation:
    return get_object_or_404(Generation.objects.visible(), pk=pk)


@login_required
@roles.staff_required
@require_POST
def approve(request: HttpRequest, pk: int) -> HttpResponse:
    row = _held(pk)
    if row.approve(request.user):
        messages.success(request, f"Approved #{row.pk}: it goes to Luma when a slot is free.")
    else:
        messages.error(request, f"#{row.pk} is no longer waiting for approval, so nothing was changed.")
    return redirect("generations:approvals")


@login_required
@roles.staff_required
@require_POST
def reject(request: HttpRequest, pk: int) -> HttpResponse:
    row = _held(pk)
    reason = " ".join(request.POST.get("reason", "").split())
    if not reason:
        messages.error(request, f"Say why #{row.pk} is turned down (its owner reads it); nothing was changed.")
    elif len(reason) > 200:
        messages.error(request, "Keep the reason under 200 characters; nothing was changed.")
    elif row.state != State.HELD:
        messages.error(request, f"#{row.pk} is no longer waiting for approval, so nothing was changed.")
    else:
        row.reject(f"Turned down by {request.user.get_username()}: {reason}", GenerationEvent.Source.USER)
        messages.success(request, f"Turned down #{row.pk}.")
    return redirect("generations:approvals")
