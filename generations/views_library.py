"""The shared library: status cards, the batched poll that keeps them live, favourites, detail, delete.

Cards are built in one place (`build_cards`), so the full page, the library partial and the poll render
the same card from the same facts.
"""

from __future__ import annotations

import ipaddress
import json
import re
import time
import zlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from statistics import median
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Exists, OuterRef, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.gzip import gzip_page
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import replace_url, trigger_client_event

from . import credits, files, lineage, pricing, providers
from .access import generation_for, may_change, uses
from .admission import queue_positions
from .forms import LibraryFilters
from .models import DURATION_CACHE_SECONDS, ArchiveState, Favourite, Generation, Kind, LumaAccount
from .models import State, _duration_cache, prior_duration
from .roles import can_make
from .words import failure_code_advice, friendly

PAGE_SIZE = 12
MAX_POLLED_CARDS = 200
# The detail page lists this many of a generation's newest events.
EVENTS_SHOWN = 100
# A card's Actions, by continue `how` (access.uses decides which a generation offers).
USE_LABELS = {
    "start-frame": "Use as start frame",
    "end-frame": "Use as end frame",
    "reference": "Use as reference",
    "extend": "Extend",
    "reverse-extend": "Reverse extend",
    "interpolate": "Interpolate with another",
    "loop": "Loop remix",
    "modify": "Modify",
    "reframe": "Reframe",
}


def compact(seconds: float) -> str:
    """12 s, 3m 05s, 2h 04m: short enough for a card, exact enough to see it move."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60}m {seconds % 60:02d}s"
    return f"{seconds // 3600}h {seconds % 3600 // 60:02d}m"


def ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def next_step(generation: Generation) -> tuple[str, str]:
    """What a person can do about a failure: (advice, label of the try-again link). Luma's reasons are free text."""
    reason = generation.reason.lower()
    if generation.failed_locally and not generation.luma_id and not providers.for_row(generation).can_list:
        return ("Only a person decides: send it again if paying for it twice is acceptable.", "Send it again")
    if generation.failed_locally:
        return ("Luma has not told us this failed: we stopped waiting. If Luma made it after all, this card "
                "turns into the result by itself; trying again now could pay twice.", "Try again anyway")
    # An Agents failure_code ends the reason, "(content_moderated)" (luma_agents.generation_from_agents); read from
    # there, not from the raw JSON, which the library's cards do not load.
    code = re.search(r"\(([a-z_]+)\)$", generation.reason or "")
    coded = failure_code_advice(code.group(1) if code else None)
    if coded:
        return coded
    if any(word in reason for word in ("input frame", "frame moderation", "moderate image", "image")):
        return "Luma could not use the image. Use a public JPEG or PNG it can fetch, then try again.", "Fix the image"
    if "concept" in reason:
        return "Remove the concepts or switch to Ray 2, then try again.", "Edit and try again"
    if any(word in reason for word in ("prompt", "blacklist", "not allowed", "contains ip")):
        return "Luma refused the prompt. Reword it and try again.", "Edit the prompt"
    if "moderation" in reason:
        return "Luma's moderation refused it. Change the prompt or the image and try again.", "Edit the prompt"
    if "loop" in reason or "keyframe" in reason:
        return "Change the loop or frame settings and try again.", "Edit and try again"
    if generation.state == State.FAILED:
        return "Something went wrong on Luma's side; failed generations are not charged. Try again.", "Try again"
    return "Check the settings and try again.", "Edit and try again"


@dataclass
class Card:
    """One generation as a card shows it: its state in words, timing, and what this user may do with it."""

    g: Generation
    favourite: bool
    may_change: bool
    can_make: bool = True  # viewers (roles.py) are offered nothing that makes a generation
    position: int | None = None
    expected: timedelta | None = None
    # How many finished generations `expected` comes from (0: the model's prior).
    samples: int = 0

    @property
    def archiving(self) -> bool:
        return self.g.state == State.COMPLETED and self.g.archive_state in (ArchiveState.WAITING, ArchiveState.DOWNLOADING)

    @property
    def live(self) -> bool:
        # A held request is live too: its card changes when staff approve it or turn it down.
        return self.g.deleted_at is None and (self.g.state in (
            State.HELD, State.PENDING, State.SUBMITTING, State.UNCONFIRMED, State.QUEUED, State.DREAMING
        ) or self.archiving)

    @property
    def progress(self) -> int | None:
        if not self.archiving:
            return None
        if not self.g.archive_size:
            return 0
        return min(100, int(self.g.archive_received * 100 / self.g.archive_size))

    @property
    def version(self) -> str:
        """Changes whenever the card would look different (apart from the ticking clock)."""
        g = self.g
        facts = f"{g.state}|{g.archive_state}|{self.progress}|{bool(g.poster)}|{self.position}|{g.reason}|{g.luma_id}"
        return format(zlib.crc32(facts.encode()), "08x")

    @property
    def label(self) -> str:
        g = self.g
        if self.archiving:
            return "Archiving"
        if g.state == State.COMPLETED:
            return "Done" if g.archive_state != ArchiveState.FAILED else "Done, not archived"
        return {
            State.HELD: "Waiting for approval",
            State.PENDING: "Waiting for a slot",
            State.SUBMITTING: "Submitted",
            State.UNCONFIRMED: "Submitted",
            State.QUEUED: "Queued",
            State.DREAMING: "Dreaming",
            State.FAILED: "Failed",
            State.REJECTED: "Rejected",
        }[State(g.state)]

    @property
    def since(self) -> datetime | None:
        """When the current phase began; the card counts up from it."""
        g = self.g
        if self.archiving:
            return g.completed_at
        return {
            State.HELD: g.created_at,
            State.PENDING: g.created_at,
            State.SUBMITTING: g.submitted_at or g.created_at,
            State.UNCONFIRMED: g.submitted_at or g.created_at,
            State.QUEUED: g.queued_at or g.submitted_at or g.created_at,
            State.DREAMING: g.dreaming_at or g.submitted_at or g.created_at,
        }.get(State(g.state))

    @property
    def elapsed(self) -> str:
        return compact((timezone.now() - self.since).total_seconds()) if self.since else ""

    @property
    def eta_at(self) -> datetime | None:
        if self.g.state != State.DREAMING or self.expected is None:
            return None
        return (self.g.submitted_at or self.g.dreaming_at or self.g.created_at) + self.expected

    @property
    def eta(self) -> str:
        if not self.eta_at:
            return ""
        left = (self.eta_at - timezone.now()).total_seconds()
        return f"about {compact(left)} left" if left > 1 else "taking longer than usual"

    @property
    def eta_basis(self) -> str:
        """How sure the ETA is: a guess from the model, or the median of how many similar runs."""
        if not self.eta_at:
            return ""
        if not self.samples:
            return "a guess: nothing similar finished here yet"
        return f"from {self.samples} recent like it" if self.samples > 1 else "from 1 recent like it"

    @property
    def took(self) -> str:
        g = self.g
        start, end = g.submitted_at or g.created_at, g.finished_at
        if g.failed_locally and not g.luma_id:
            return ""  # we gave up waiting for an answer: how long that took says nothing about Luma
        return compact((end - start).total_seconds()) if start and end else ""

    @property
    def note(self) -> str:
        g = self.g
        if g.state == State.HELD:
            return g.reason or "staff must approve it first"  # why it is held: the budget it would exceed
        if g.state == State.PENDING:
            return f"{ordinal(self.position)} in line" if self.position else "in line"
        if g.state == State.UNCONFIRMED:
            return "checking that Luma has it"
        if g.state == State.SUBMITTING:
            return "sending to Luma"
        if self.archiving:
            return "copying the file to our library"
        if g.state == State.COMPLETED and g.archive_state == ArchiveState.FAILED:
            return g.archive_error or "our copy failed"
        return ""

    @property
    def reason(self) -> str:
        """Why it failed, in plain words where we know Luma's message."""
        return friendly(self.g.reason)

    @property
    def advice(self) -> tuple[str, str] | None:
        return next_step(self.g) if self.g.state in (State.FAILED, State.REJECTED) else None

    @property
    def media_kind(self) -> str:
        if self.g.is_archived:
            return "video" if self.g.is_video else "image"
        return "poster" if self.g.poster else "placeholder"

    @property
    def kind_label(self) -> str:
        """The kind in words; a loop made from a video is a loop remix, although Luma files it as an extend."""
        if self.g.kind == Kind.EXTEND and self.g.loop:
            return "Loop remix"
        return self.g.get_kind_display()

    @property
    def continuable(self) -> bool:
        return self.g.can_continue

    @property
    def actions(self) -> list[tuple[str, str, bool]]:
        """What can be made from this generation, as (label, address, fills the create form), by what it is:
        an image never offers extend, upscale or add audio, a video never "use as reference"."""
        pk, found = self.g.pk, []
        if not self.can_make:
            return found
        for how in uses(self.g):
            label = USE_LABELS[how]
            if how in ("modify", "reframe"):
                label += " video" if self.g.is_video else " image"
            found.append((label, reverse("generations:continue", args=[pk, how]), True))
        if self.g.can_upscale and uses(self.g):
            found.insert(3, ("Upscale", reverse("generations:upscale", args=[pk]), False))
            found.insert(4, ("Add audio", reverse("generations:add_audio", args=[pk]), False))
        return found


def public_url_warning() -> str:
    """Why Luma could not reach us, when PUBLIC_BASE_URL is a private address and we talk to the real Dream Machine
    API (callbacks and keyframe addresses come to us; the Agents API needs neither: its uploads go through its
    Files API)."""
    luma_host = urlsplit(settings.LUMA_BASE_URL).hostname or ""
    if not settings.LUMAAI_API_KEY or not luma_host.endswith("lumalabs.ai"):
        return ""
    host = (urlsplit(settings.PUBLIC_BASE_URL).hostname or "").lower()
    try:
        address = ipaddress.ip_address(host)
        private = address.is_loopback or address.is_private or address.is_link_local or address.is_unspecified
    except ValueError:
        private = host == "localhost" or host.endswith((".localhost", ".local", ".internal"))
    if not private:
        return ""
    return (
        f"Luma cannot reach {settings.PUBLIC_BASE_URL}, so it cannot fetch uploaded images or report back "
        "when a video is done. Set PUBLIC_BASE_URL to an address reachable from the internet, or give images by "
        "their public web address."
    )


def dollars(cents: float | None) -> str:
    return "" if cents is None else f"${cents / 100:,.2f}"


def page_context(request: HttpRequest, account: LumaAccount | None = None) -> dict:
    """What every page's frame shows: the credits badge."""
    account = account or LumaAccount.get()
    return {"account": account, "credits": dollars(account.credit_balance)}


def card_rows(user, rows: QuerySet[Generation] | None = None) -> QuerySet[Generation]:
    """Visible generations (or `rows`) with everything a card needs in one query: owner and this user's favourite."""
    return (
        (Generation.objects.visible() if rows is None else rows)
        .select_related("owner")
        .defer("raw", "callback_url")
        .annotate(is_favourite=Exists(Favourite.objects.filter(user=user, generation=OuterRef("pk"))))
    )


# Before this install has finished a similar generation: what Luma usually takes, submit to done, by model
# (third-party reports say 30-60 s for a 5 s Ray 2 clip; Flash and Photon are faster). Rough on purpose: the card
# says so, and the median of real runs replaces it as soon as there is one.
# With no history yet, look again soon: the first finished generation should inform the next card at once.
NO_HISTORY_CACHE_SECONDS = 5


def expected_durations(pairs: set[tuple[str, str]]) -> dict[tuple[str, str], tuple[timedelta, int]]:
    """(expected submit-to-done time, how many finished ones it comes from) for several kinds of work at once:
    the median of the last 20 similar completed generations, or the model's prior (0) when there are none.

    Cached a minute beside Generation.expected_duration's entries (under ("eta", kind, model)); whatever the
    cache lacks costs one query in all, not one per (kind, model): a page of dreaming cards of many kinds stays
    within the page's fixed query budget.
    """
    now = time.monotonic()
    found = {pair: cached[1] for pair in pairs
             if (cached := _duration_cache.get(("eta", *pair))) and cached[0] > now}  # type: ignore[arg-type]
    missing = pairs - found.keys()
    if not missing:
        return found
    recent = Q()
    for kind, model in missing:
        # The same rows Generation.expected_duration reads: the last 20 similar completed ones (duration_idx).
        recent |= Q(pk__in=Generation.objects.filter(
            kind=kind, model=model, state=State.COMPLETED, submitted_at__isnull=False
        ).order_by("-completed_at").values("pk")[:20])
    durations: dict[tuple[str, str], list[float]] = {pair: [] for pair in missing}
    for kind, model, sent, done in Generation.objects.filter(recent).values_list(
        "kind", "model", "submitted_at", "completed_at"
    ):
        if sent and done:
            durations[kind, model].append((done - sent).total_seconds())
    for pair, seconds in durations.items():
        if seconds:
            found[pair] = (timedelta(seconds=median(seconds)), len(seconds))
            keep = DURATION_CACHE_SECONDS
        else:
            found[pair] = (prior_duration(*pair), 0)
            keep = NO_HISTORY_CACHE_SECONDS
        _duration_cache[("eta", *pair)] = (now + keep, found[pair])  # type: ignore[index]
    return found


def build_cards(rows, user) -> list[Card]:
    """Cards for rows from card_rows(): queue places and ETAs cost one query each, whatever the count."""
    rows = list(rows)
    positions = queue_positions() if any(row.state == State.PENDING for row in rows) else {}
    # Similar generations (same kind and model) share an ETA.
    expected = expected_durations({(row.kind, row.model) for row in rows if row.state == State.DREAMING})
    maker = can_make(user)
    return [
        Card(
            g=row,
            favourite=bool(getattr(row, "is_favourite", False)),
            may_change=may_change(user, row),
            can_make=maker,
            position=positions.get(row.pk),
            expected=expected[row.kind, row.model][0] if (row.kind, row.model) in expected else None,
            samples=expected[row.kind, row.model][1] if (row.kind, row.model) in expected else 0,
        )
        for row in rows
    ]


def library_context(request: HttpRequest, filters: LibraryFilters) -> dict:
    rows = list(filters.apply(card_rows(request.user), request.user)[: PAGE_SIZE + 1])
    cards = build_cards(rows[:PAGE_SIZE], request.user)
    more = len(rows) > PAGE_SIZE
    return {
        "filters": filters,
        "cards": cards,
        "more_query": filters.querystring(before=cards[-1].g.pk) if more else "",
        "filter_query": filters.querystring(),
        "before": filters.value("before"),
    }


@gzip_page  # card markup repeats, so it shrinks about 9x (see views.dashboard)
@login_required
@require_GET
def library(request: HttpRequest) -> HttpResponse:
    """The library region: the filtered list (htmx), the next page of the infinite scroll, or the full page."""
    filters = LibraryFilters(request.GET)
    if not request.htmx or request.htmx.history_restore_request:
        query = request.GET.urlencode()
        return redirect(reverse("generations:dashboard") + (f"?{query}" if query else ""))
    context = library_context(request, filters)
    if filters.value("before"):
        return render(request, "generations/dashboard.html#library-page", context)
    response = render(request, "generations/dashboard.html#library-results", context)
    query = context["filter_query"]
    return replace_url(response, reverse("generations:dashboard") + (f"?{query}" if query else ""))


@login_required
@require_GET
def estimate(request: HttpRequest) -> HttpResponse:
    """The create form's price estimate, for the options in the query (the form's, sent on each change); with
    `source`, the upscale or add-audio page's for that library video (`what` is the kind)."""
    if request.GET.get("source", "").isdigit() and request.GET.get("what") in (Kind.UPSCALE, Kind.ADD_AUDIO):
        source = generation_for(request.user, int(request.GET["source"]))
        price = pricing.action_estimate(request.GET["what"], source, request.GET.get("resolution", ""))
    else:
        price = pricing.estimate_for(lambda name: request.GET.get(name, ""), request.user)
    return render(request, "generations/estimate.html#estimate-words", {"estimate": price})


@login_required
@require_GET
def credits_badge(request: HttpRequest) -> HttpResponse:
    """The header's credit badge, asked for again a little after a generation ends (Luma refunds failures, and
    the balance is read again in the background)."""
    return render(request, "base.html#credits-badge", page_context(request))


@gzip_page  # card markup repeats, so it shrinks about 9x (see views.dashboard)
@login_required
@require_GET
def poll(request: HttpRequest) -> HttpResponse:
    """The one request a page makes to keep its live cards current: `live=<pk>:<version>` for each.

    Answers the changed cards as out-of-band swaps (and removes deleted ones), or 204 when nothing changed.
    Reads only our database.
    """
    seen: dict[int, str] = {}
    for item in request.GET.getlist("live")[:MAX_POLLED_CARDS]:
        pk, _, version = item.partition(":")
        if pk.isdigit():
            seen[int(pk)] = version
    # By primary key alone, unordered, deleted rows dropped here as visible() would: with deleted_at or the
    # library's ORDER BY in the SQL, SQLite (which keeps no statistics) walks the whole library index.
    rows = card_rows(request.user, Generation.objects.filter(pk__in=seen)).order_by() if seen else []
    cards = build_cards([row for row in rows if row.deleted_at is None], request.user)
    changed = [card for card in cards if card.version != seen[card.g.pk]]
    gone = sorted(set(seen) - {card.g.pk for card in cards})
    if not changed and not gone:
        return HttpResponse(status=204)
    response = render(request, "generations/card.html#poll-response", {"cards": changed, "gone": gone})
    if any(card.g.is_terminal for card in changed):
        # The credit badge listens: a generation that ended changed (or will change) the balance.
        trigger_client_event(response, "generation-ended", {"ids": [card.g.pk for card in changed if card.g.is_terminal]})
    return response


def _back(request: HttpRequest, fallback: str) -> str:
    """Where a plain (non-htmx) form post goes back to: `next`, else the page it came from."""
    for target in (request.POST.get("next"), request.headers.get("Referer")):
        if target and url_has_allowed_host_and_scheme(
            target, {request.get_host()}, require_https=request.is_secure()
        ):
            return target
    return fallback


@login_required
@require_POST
def favourite(request: HttpRequest, pk: int) -> HttpResponse:
    """Star or unstar a generation for this user."""
    generation = generation_for(request.user, pk)
    deleted, _ = Favourite.objects.filter(user=request.user, generation=generation).delete()
    if not deleted:
        Favourite.objects.get_or_create(user=request.user, generation=generation)
    card = Card(g=generation, favourite=not deleted, may_change=may_change(request.user, generation))
    if request.htmx:
        return render(request, "generations/card.html#favourite-button", {"card": card})
    return redirect(_back(request, reverse("generations:dashboard")))


@login_required
@require_GET
def detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Everything about one generation: the video, every parameter, the events, the lineage; raw JSON for staff."""
    generation = generation_for(request.user, pk)
    generation.is_favourite = Favourite.objects.filter(user=request.user, generation=generation).exists()
    # The newest events only: a generation called back a thousand times must not make a page of thousands.
    events = list(generation.events.order_by("-created_at", "-id")[:EVENTS_SHOWN])
    event_count = generation.events.count() if len(events) == EVENTS_SHOWN else len(events)
    context = {
        **page_context(request),
        "card": build_cards([generation], request.user)[0],
        "g": generation,
        "events": events[::-1],
        "earlier_events": max(event_count - EVENTS_SHOWN, 0),
        "made_from": lineage.made_from(generation),
        "made_into": lineage.made_into(generation),
        "inputs": lineage.inputs(generation),
        "extras": files.extra_files(generation),
        "estimate": generation.price_cents / 100,  # as estimated when asked for: HDR, EXR, references included
        "raw_json": json.dumps(generation.raw, indent=2, sort_keys=True) if request.user.is_staff else None,
    }
    return render(request, "generations/detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def delete(request: HttpRequest, pk: int) -> HttpResponse:
    """Ask, then delete: hidden from the library at once; a job removes our files and deletes it on Luma."""
    generation = generation_for(request.user, pk, change=True)
    if request.method == "POST":
        generation.mark_deleted(request.user)
        # The Agents API has no delete: Luma keeps what it made there, and the page must not promise otherwise.
        messages.success(request, f"Deleted #{generation.pk}. " + (
            "It is being removed from Luma too." if generation.luma_deletes else
            "Our copy is being removed; Luma keeps its own (its Agents API has no delete)." if generation.luma_id
            else "Luma never had it."))
        return redirect("generations:dashboard")
    return render(request, "generations/delete.html", {**page_context(request), "g": generation})


@login_required
@require_GET
def me(request: HttpRequest) -> HttpResponse:
    """This user's page: their estimated spend this month and how their generations went."""
    lines = pricing.spend_this_month(request.user)
    mine = Generation.objects.filter(owner=request.user, created_at__gte=pricing.month_start())
    counts = {
        "completed": mine.filter(state=State.COMPLETED).count(),
        "failed": mine.filter(state__in=[State.FAILED, State.REJECTED]).count(),
        "live": mine.live().count(),
    }
    context = {
        **page_context(request),
        "lines": lines,
        "total": sum(line.total_cents for line in lines) / 100,
        "month": pricing.month_start(),
        "counts": counts,
        "reconciled": credits.reconcile(request.user, pricing.month_start()),
    }
    return render(request, "generations/me.html", context)
