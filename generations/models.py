"""Generations mirror Luma's generation objects: what was asked, what Luma says, and our archived copy.

`Generation.apply_remote` is the one place that applies Luma's news. Luma's states move only forward; the one
exception is our own belief: a row we failed locally (Luma never said so) is corrected by Luma's truth.
Callbacks are not news: Luma does not sign them, so a callback can only report progress or prompt a confirming
read (`nudge`); terminal outcomes, asset URLs and Luma's id come from Luma's own answers.
"""

from __future__ import annotations

import secrets
import time
from urllib.parse import urlsplit
from datetime import timedelta
from statistics import median
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.db.models.functions import Lower
from django.db.models.functions import Coalesce, Greatest
from django.urls import reverse
from django.utils import timezone

if TYPE_CHECKING:
    from .luma import Generation as RemoteGeneration


def new_token() -> str:
    return secrets.token_urlsafe(24)


class Kind(models.TextChoices):
    TEXT_TO_VIDEO = "text_to_video", "Text to video"
    IMAGE_TO_VIDEO = "image_to_video", "Image to video"
    EXTEND = "extend", "Extend"
    REVERSE_EXTEND = "reverse_extend", "Reverse extend"
    INTERPOLATE = "interpolate", "Interpolate"
    IMAGE = "image", "Image"
    UPSCALE = "upscale", "Upscale"
    ADD_AUDIO = "add_audio", "Add audio"
    MODIFY_VIDEO = "modify_video", "Modify video"
    REFRAME_VIDEO = "reframe_video", "Reframe video"
    REFRAME_IMAGE = "reframe_image", "Reframe image"
    IMAGE_EDIT = "image_edit", "Edit image"
    LAYERING = "layering", "Layers"


class Provider(models.TextChoices):
    """Which of Luma's APIs made a generation (generations/providers.py holds one adapter for each)."""

    DREAM_MACHINE = "dream_machine", "Dream Machine"
    AGENTS = "agents", "Agents API"


class State(models.TextChoices):
    HELD = "held", "Waiting for approval"
    PENDING = "pending", "Waiting for a slot"
    SUBMITTING = "submitting", "Submitting"
    UNCONFIRMED = "unconfirmed", "Submitted, unconfirmed"
    QUEUED = "queued", "Queued"
    DREAMING = "dreaming", "Dreaming"
    COMPLETED = "completed", "Completed"
    FAILED = "failed", "Failed"
    REJECTED = "rejected", "Rejected"


class ArchiveState(models.TextChoices):
    NONE = "", "Not yet"
    WAITING = "waiting", "Waiting to archive"
    DOWNLOADING = "downloading", "Archiving"
    DONE = "done", "Archived"
    FAILED = "failed", "Archive failed"


# How far along each state is. News only ever moves a row to a higher rank.
STATE_RANK = {
    State.HELD: 0,
    State.PENDING: 0,
    State.SUBMITTING: 1,
    State.UNCONFIRMED: 1,
    State.QUEUED: 2,
    State.DREAMING: 3,
    State.COMPLETED: 4,
    State.FAILED: 4,
    State.REJECTED: 4,
}
TERMINAL_STATES = (State.COMPLETED, State.FAILED, State.REJECTED)
# Rows that hold one of Luma's concurrency slots (or may: an unconfirmed create).
IN_FLIGHT_STATES = (State.SUBMITTING, State.UNCONFIRMED, State.QUEUED, State.DREAMING)
# Rows whose card still changes without anyone acting: the browser polls while any are on the page.
LIVE_STATES = (State.PENDING, *IN_FLIGHT_STATES)
VIDEO_KINDS = (Kind.TEXT_TO_VIDEO, Kind.IMAGE_TO_VIDEO, Kind.EXTEND, Kind.REVERSE_EXTEND, Kind.INTERPOLATE)
# Kinds whose result is a still image; every other kind makes a video.
IMAGE_KINDS = (Kind.IMAGE, Kind.REFRAME_IMAGE, Kind.IMAGE_EDIT, Kind.LAYERING)
# Reframe geometry Luma takes (pixels): where the source sits in the new canvas, its crop and its resized size.
REFRAME_FIELDS = ("grid_position_x", "grid_position_y", "x_start", "x_end", "y_start", "y_end", "resized_width",
                  "resized_height")
# Photon's references, as Luma takes them: image_ref and style_ref [{"url", "weight"}], character_ref
# {"identity0": {"images": [url, ...]}}, modify_image_ref {"url", "weight"}.
PHOTON_REFERENCES = ("image_ref", "style_ref", "character_ref", "modify_image_ref")

# What apply_remote writes; saving only these keeps a callback's UPDATE small.
REMOTE_FIELDS = [
    "luma_id", "state", "reason", "luma_created_at", "luma_model", "video_url", "image_url", "progress_video_url",
    "raw", "submitted_at", "queued_at", "dreaming_at", "completed_at", "failed_at", "last_news_at", "next_poll_at",
    "polls_without_news", "archive_state", "failed_locally",
]
# The states Luma itself reports.
LUMA_STATES = (State.QUEUED, State.DREAMING, State.COMPLETED, State.FAILED)
# A callback may prompt a confirming read of Luma at most this often per generation.
NUDGE_EVERY = timedelta(seconds=5)
# How often a row we failed locally is checked again with Luma, and for how long.
RECHECK_AFTER = timedelta(minutes=2)
RECHECKS = 6
# Before any generation of a kind and model has finished here, its duration is guessed from these (seconds, submit
# to done; a third-party report puts a 5 s Ray 2 clip at 30-60 s, Luma publishes no times).
PRIOR_SECONDS = {"ray-2": 60, "ray-flash-2": 30, "photon-1": 20, "photon-flash-1": 10,
                 # The Agents API: "a typical 5 s/720p video finishes in under 2 minutes"; 2K images in tens of seconds.
                 "ray-3.2": 90, "uni-1": 45, "uni-1-max": 50}
PRIOR_BY_KIND = {Kind.UPSCALE: 45, Kind.ADD_AUDIO: 30}
# Median durations are recomputed at most this often per (kind, model), not on every callback.
DURATION_CACHE_SECONDS = 60
_duration_cache: dict[tuple[str, str], tuple[float, timedelta]] = {}
# Polls without news come this often (the first STEADY_POLLS of them), then back off up to MAX_POLL_INTERVAL.
POLL_EVERY = timedelta(seconds=15)
# The first poll comes at this share of the usual submit-to-done time.
EARLY_POLL = 0.8
STEADY_POLLS = 3
MAX_POLL_INTERVAL = timedelta(minutes=10)
# While callbacks arrive, the safety-net poll waits at least this long past the expected finish.
CALLBACK_SLACK = timedelta(seconds=60)


def kind_for_keyframes(keyframes: dict | None) -> Kind:
    """The kind of a video request, from its keyframes (Luma's own classification, luma-api.md section 4)."""
    keyframes = keyframes or {}
    types = {name: (frame or {}).get("type") for name, frame in keyframes.items() if frame}
    start, end = types.get("frame0"), types.get("frame1")
    if start == "generation" and end == "generation":
        return Kind.INTERPOLATE
    if start == "generation":
        return Kind.EXTEND
    if end == "generation":
        return Kind.REVERSE_EXTEND
    if start or end:
        return Kind.IMAGE_TO_VIDEO
    return Kind.TEXT_TO_VIDEO


def prior_duration(kind: str, model: str) -> timedelta:
    """What a generation of this kind and model is expected to take before we have seen any (on Luma's clock:
    settings.LUMA_TIME_SCALE, below 1 for a sped-up simulator)."""
    if kind in PRIOR_BY_KIND:
        seconds = PRIOR_BY_KIND[kind]
    else:
        default = PRIOR_SECONDS["photon-1"] if kind in IMAGE_KINDS else PRIOR_SECONDS["ray-2"]
        seconds = PRIOR_SECONDS.get(model, default)
    return timedelta(seconds=seconds * settings.LUMA_TIME_SCALE)


def poll_every() -> timedelta:
    """POLL_EVERY on Luma's clock (settings.LUMA_TIME_SCALE)."""
    return POLL_EVERY * settings.LUMA_TIME_SCALE


class GenerationQuerySet(models.QuerySet):
    def visible(self) -> GenerationQuerySet:
        """Everything the team library shows: the whole team sees every generation, except deleted ones."""
        return self.filter(deleted_at__isnull=True)

    def in_flight(self) -> GenerationQuerySet:
        return self.filter(state__in=IN_FLIGHT_STATES)

    def live(self) -> GenerationQuerySet:
        return self.filter(Q(state__in=LIVE_STATES) | Q(archive_state__in=[ArchiveState.WAITING, ArchiveState.DOWNLOADING]))

    def pending(self) -> GenerationQuerySet:
        return self.filter(state=State.PENDING)

    def lineage_children(self, generation: Generation) -> GenerationQuerySet:
        return self.filter(Q(frame0_generation=generation) | Q(frame1_generation=generation) | Q(source=generation))


class Generation(models.Model):
    """One request to Luma and everything we learn about it."""

    Kind = Kind
    State = State
    ArchiveState = ArchiveState

    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="generations")
    provider = models.CharField(max_length=20, choices=Provider.choices, default=Provider.DREAM_MACHINE)
    kind = models.CharField(max_length=20, choices=Kind.choices, default=Kind.TEXT_TO_VIDEO)
    # A form posts its token once; a double click or a resent POST finds the row it already made.
    client_token = models.CharField(max_length=64, blank=True, default="")

    # What was asked.
    prompt = models.TextField(blank=True)
    negative_prompt = models.TextField(blank=True)
    model = models.CharField(max_length=40, blank=True)
    resolution = models.CharField(max_length=10, blank=True)
    duration = models.CharField(max_length=10, blank=True)
    aspect_ratio = models.CharField(max_length=10, blank=True)
    loop = models.BooleanField(default=False)
    concepts = models.JSONField(default=list, blank=True)
    frame0_url = models.URLField(max_length=2000, blank=True)
    frame1_url = models.URLField(max_length=2000, blank=True)
    frame0_generation = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="continued_as_frame0"
    )
    frame1_generation = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="continued_as_frame1"
    )
    # The generation an upscale, add-audio, modify or reframe request works on.
    source = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="derivatives")
    # Modify and reframe: the media to work on when it is not a library generation (an uploaded file's URL).
    media_url = models.URLField(max_length=2000, blank=True)
    # Modify and reframe video: an optional first frame image.
    first_frame_url = models.URLField(max_length=2000, blank=True)
    # Modify video: adhere_1..3, flex_1..3 or reimagine_1..3.
    mode = models.CharField(max_length=20, blank=True)
    # Review: a pick or a reject, by whom and when (issue 10).
    review_mark = models.CharField(max_length=10, choices=[("", "None"), ("picked", "Picked"),
                                                           ("rejected", "Rejected")], blank=True, default="")
    reviewed_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                    related_name="reviews")
    reviewed_at = models.DateTimeField(null=True, blank=True)
    # "Make N": the rows one submission asked for share this (and are shown as a set).
    batch = models.CharField(max_length=32, blank=True, default="", db_index=True)
    # Everything else a kind takes, exactly as Luma takes it: reframe geometry (REFRAME_FIELDS), Photon's
    # references (PHOTON_REFERENCES), an image format.
    options = models.JSONField(default=dict, blank=True)
    # The estimated price when it was requested, with every option (pricing.estimate_cents), in US cents: what
    # budgets, the usage page, a board's cost and the export add up, so they agree with the check that let it in.
    price_cents = models.PositiveIntegerField(default=0)
    # The URL Luma calls back; its token is this row's alone, and Luma echoes it in request.callback_url.
    callback_token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    callback_url = models.URLField(max_length=500, blank=True)

    # What Luma says.
    luma_id = models.CharField(max_length=64, unique=True, null=True, blank=True)
    state = models.CharField(max_length=20, choices=State.choices, default=State.PENDING, db_index=True)
    reason = models.TextField(blank=True, help_text="Luma's failure reason, or why the request was refused.")
    luma_created_at = models.DateTimeField(null=True, blank=True)
    luma_model = models.CharField(max_length=40, blank=True)
    video_url = models.URLField(max_length=2000, blank=True)
    image_url = models.URLField(max_length=2000, blank=True)
    progress_video_url = models.URLField(max_length=2000, blank=True)
    raw = models.JSONField(null=True, blank=True, help_text="The last generation JSON Luma sent.")

    # When each state was reached.
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    # created_at's date in the site's time zone (TIME_ZONE), kept so that spend by day is grouped by a column: a
    # date worked out per row with a time zone costs the usage page most of its time on SQLite (spend_by_day_idx).
    created_day = models.DateField(null=True, editable=False)
    submitted_at = models.DateTimeField(null=True, blank=True)
    queued_at = models.DateTimeField(null=True, blank=True)
    dreaming_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    failed_at = models.DateTimeField(null=True, blank=True)

    # Submission and polling bookkeeping.
    submit_attempts = models.PositiveSmallIntegerField(default=0)
    # Claimed by a submit job that is still uploading the row's inputs (the Agents API's Files API): nothing has
    # been sent to Luma yet, so the stall check must not take the wait for a lost answer (about_to_send).
    preparing = models.BooleanField(default=False)
    last_news_at = models.DateTimeField(null=True, blank=True)
    next_poll_at = models.DateTimeField(null=True, blank=True, db_index=True)
    polls_without_news = models.PositiveSmallIntegerField(default=0)
    # We failed the row ourselves (a 404 read once, a create Luma never confirmed); Luma never said failed.
    failed_locally = models.BooleanField(default=False)
    # When a callback last prompted a confirming read of Luma (at most one per NUDGE_EVERY).
    nudged_at = models.DateTimeField(null=True, blank=True)

    # Our archived copy.
    archive_state = models.CharField(max_length=12, choices=ArchiveState.choices, default=ArchiveState.NONE, blank=True)
    archive_file = models.FileField(upload_to="archive/", blank=True, max_length=300)
    poster = models.FileField(upload_to="posters/", blank=True, max_length=300)
    archive_size = models.BigIntegerField(null=True, blank=True)
    archive_received = models.BigIntegerField(default=0)
    sha256 = models.CharField(max_length=64, blank=True)
    archive_attempts = models.PositiveSmallIntegerField(default=0)
    archive_error = models.TextField(blank=True)
    archive_updated_at = models.DateTimeField(null=True, blank=True)
    # Which archive run owns the row while downloading: only the owner may store or give up.
    archive_claim = models.CharField(max_length=32, blank=True, default="")
    # Every further output we keep (Agents' layering: one PNG per layer), in Luma's order:
    # [{"index", "label", "description", "alpha_hint", "file", "size", "sha256"}].
    extra_files = models.JSONField(default=list, blank=True)

    deleted_at = models.DateTimeField(null=True, blank=True)
    luma_deleted_at = models.DateTimeField(null=True, blank=True)

    objects = models.Manager.from_queryset(GenerationQuerySet)()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["deleted_at", "-created_at"], name="library_idx"),
            # The library filtered by owner ("mine") or by state, newest first, without sorting every match.
            models.Index(fields=["owner", "deleted_at", "-created_at"], name="library_owner_idx"),
            models.Index(fields=["state", "deleted_at", "-created_at"], name="library_state_idx"),
            # Rows still archiving ("In progress" covers them too), found without walking the finished ones.
            models.Index(fields=["archive_state", "deleted_at", "-created_at"], name="library_archive_idx"),
            models.Index(fields=["state", "next_poll_at"], name="poll_due_idx"),
            models.Index(fields=["kind", "model", "state", "-completed_at"], name="duration_idx"),
            # The usage page and budgets: a month's spend by day, person and model, read from the index alone and
            # in its order (no sort for the grouping).
            models.Index(fields=["created_day", "owner", "model", "state", "price_cents"], name="spend_by_day_idx"),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["owner", "client_token"], condition=~Q(client_token=""), name="one_row_per_form_post"
            )
        ]
        # Roles (issue 10): viewers watch, download, comment and review; creators also make (this permission).
        permissions = [("make_generation", "Can make generations (spends the team's money)")]

    def __str__(self) -> str:
        return f"#{self.pk} {self.get_kind_display()}: {self.prompt[:60]}"

    def get_absolute_url(self) -> str:
        return reverse("generations:detail", args=[self.pk])

    @classmethod
    def request(cls, owner, *, kind: Kind, client_token: str = "", **fields) -> tuple[Generation, bool]:
        """Ask for a new generation: a pending row that admission will submit. Returns (row, created).

        The same client_token from the same owner returns the row it already made (double clicks,
        resent forms), so nothing is requested twice.
        """
        from . import budgets, tasks

        if client_token:
            existing = cls.objects.filter(owner=owner, client_token=client_token).first()
            if existing:
                return existing, False
        with transaction.atomic():
            row = cls(owner=owner, kind=kind, client_token=client_token, **fields)
            row.price_cents = row.estimated_price()
            # Budgets are checked before anything reaches Luma: over one, the request is refused (OverBudget,
            # nothing is made) or, if the team chose so, held for staff to approve.
            budgets.wait_for_other_checks()
            over = budgets.check(owner, row.price_cents)
            if over and not budgets.hold_for_approval():
                raise budgets.OverBudget(over)
            if over:
                row.state, row.reason = State.HELD, over
            row.callback_url = settings.PUBLIC_BASE_URL + reverse("generations:webhook", args=[row.callback_token])
            row.save()
            row.record(GenerationEvent.Source.USER, f"requested by {owner.get_username() if owner else 'nobody'}"
                       + (f"; held for approval ({over})" if over else ""))
            tasks.enqueue("admit")
        return row, True

    def approve(self, by) -> bool:
        """Staff let a request held over budget go ahead: it waits for a slot like any other."""
        from . import tasks

        if Generation.objects.filter(pk=self.pk, state=State.HELD).update(state=State.PENDING, reason=""):
            self.refresh_from_db()
            self.record(GenerationEvent.Source.USER, f"approved by {by.get_username()}")
            tasks.enqueue("admit")
            return True
        return False

    def mark_deleted(self, by) -> None:
        """Hide the row from the library now; a job removes our files and deletes it on Luma."""
        from . import tasks

        if Generation.objects.filter(pk=self.pk, deleted_at__isnull=True).update(deleted_at=timezone.now()):
            self.refresh_from_db()
            self.record(GenerationEvent.Source.DELETE, f"deleted by {by.get_username() if by else 'the system'}")
            tasks.enqueue("delete_generation", self.pk)

    # --- derived --------------------------------------------------------------------------------

    @property
    def is_terminal(self) -> bool:
        return self.state in TERMINAL_STATES

    @property
    def is_in_flight(self) -> bool:
        return self.state in IN_FLIGHT_STATES

    @property
    def is_video(self) -> bool:
        return self.kind not in IMAGE_KINDS

    @property
    def is_archived(self) -> bool:
        return self.archive_state == ArchiveState.DONE and bool(self.archive_file)

    @property
    def can_continue(self) -> bool:
        """Luma extends and interpolates only completed videos it still has."""
        return self.state == State.COMPLETED and self.is_video and bool(self.luma_id) and not self.deleted_at

    @property
    def can_upscale(self) -> bool:
        """Upscale and add audio: Dream Machine's alone (Luma's Agents API has neither), for a video it still has."""
        from . import providers

        return self.can_continue and providers.for_row(self).can_upscale

    @property
    def luma_deletes(self) -> bool:
        """Deleting it deletes it on Luma too: Luma has it, and its API has a delete (the Agents API has none)."""
        from . import providers

        return bool(self.luma_id) and providers.for_row(self).can_delete

    @property
    def finished_at(self):
        return self.completed_at or self.failed_at

    def estimated_price(self) -> int:
        """What this request is estimated to cost, in US cents (pricing.estimate_cents, options included)."""
        from . import pricing

        return pricing.estimate_cents(self.kind, self.model, self.resolution, self.duration, self.options or {})

    def save(self, *args, **kwargs):
        if self._state.adding and not self.price_cents:
            self.price_cents = self.estimated_price()  # rows made outside request() (the admin, tests) priced too
        if self.created_at:
            self.created_day = timezone.localdate(self.created_at, timezone.get_default_timezone())
            fields = kwargs.get("update_fields")
            if fields is not None and "created_at" in fields:
                kwargs["update_fields"] = {*fields, "created_day"}
        super().save(*args, **kwargs)

    def luma_request(self) -> dict:
        """The body of the create call, rebuilt from the row so a resend is exactly the first send."""
        options = self.options or {}
        if self.kind == Kind.IMAGE:
            body = {"prompt": self.prompt, "model": self.model or "photon-1", "aspect_ratio": self.aspect_ratio or None,
                    "format": options.get("format")}
            body.update({name: options[name] for name in PHOTON_REFERENCES if options.get(name)})
        elif self.kind == Kind.UPSCALE:
            body = {"resolution": self.resolution or None}
        elif self.kind == Kind.ADD_AUDIO:
            body = {"prompt": self.prompt or None, "negative_prompt": self.negative_prompt or None}
        elif self.kind in (Kind.MODIFY_VIDEO, Kind.REFRAME_VIDEO, Kind.REFRAME_IMAGE):
            body = {"media": self.media_source_url(), "model": self.model or None, "prompt": self.prompt or None}
            if self.kind == Kind.MODIFY_VIDEO:
                body["mode"] = self.mode or "flex_1"
            else:
                body["aspect_ratio"] = self.aspect_ratio or None
                body.update({name: options[name] for name in REFRAME_FIELDS if options.get(name) is not None})
            if self.kind == Kind.REFRAME_IMAGE:
                body["format"] = options.get("format")
            else:
                body["first_frame"] = self.first_frame_url or None
        else:
            keyframes = {}
            for name, url, source in (
                ("frame0", self.frame0_url, self.frame0_generation),
                ("frame1", self.frame1_url, self.frame1_generation),
            ):
                if source is not None:
                    keyframes[name] = {"type": "generation", "id": source.luma_id}
                elif url:
                    keyframes[name] = {"type": "image", "url": url}
            body = {
                "prompt": self.prompt or None,
                "model": self.model or "ray-2",
                "aspect_ratio": self.aspect_ratio or None,
                "loop": self.loop or None,
                "keyframes": keyframes or None,
                "resolution": self.resolution or None,
                "duration": self.duration or None,
                "concepts": list(self.concepts) or None,
            }
        body["callback_url"] = self.callback_url or None
        return {key: value for key, value in body.items() if value is not None}

    def media_source_url(self) -> str | None:
        """What a modify or reframe works on: an uploaded file's URL, or the library source's asset at Luma."""
        if self.media_url:
            return self.media_url
        if self.source is not None:
            return (self.source.video_url if self.source.is_video else self.source.image_url) or None
        return None

    def expected_duration(self) -> timedelta:
        """The median submit-to-finish time of the last similar completed generations (cached a minute)."""
        key = (self.kind, self.model)
        cached = _duration_cache.get(key)
        if cached and cached[0] > time.monotonic():
            return cached[1]
        recent = (
            Generation.objects.filter(kind=self.kind, model=self.model, state=State.COMPLETED, submitted_at__isnull=False)
            .order_by("-completed_at")
            .values_list("submitted_at", "completed_at")[:20]
        )
        durations = [(done - sent).total_seconds() for sent, done in recent if done and sent]
        expected = timedelta(seconds=median(durations)) if durations else prior_duration(self.kind, self.model)
        _duration_cache[key] = (time.monotonic() + DURATION_CACHE_SECONDS, expected)
        return expected

    # --- transitions ----------------------------------------------------------------------------

    def record(self, source: str, summary: str, data: dict | None = None) -> GenerationEvent:
        return GenerationEvent.objects.create(
            generation=self, source=source, state=self.state, summary=summary[:300], data=data
        )

    def schedule_next_poll(self, now=None, news: bool = True) -> None:
        """When to ask Luma next if no callback arrives first.

        Just after similar generations usually finish, then every POLL_EVERY a few times (so a result whose
        callbacks are all lost shows within about that long), then backing off, so a generation still costs
        only a handful of calls (the seed guide's loop polls every 3 s).
        """
        now = now or timezone.now()
        if self.is_terminal:
            self.next_poll_at = None
            return
        self.polls_without_news = 0 if news else self.polls_without_news + 1
        # Polling starts a little before the usual finish: where no callback tells us (the Agents API), the finish
        # times we learn are our own polls' times, late by up to POLL_EVERY; aiming at them exactly would make each
        # estimate later than the last.
        expected_done = (self.submitted_at or now) + self.expected_duration() * EARLY_POLL
        if news:
            self.next_poll_at = max(now + poll_every(), expected_done)
        else:
            backoff = poll_every() * 2 ** max(self.polls_without_news - STEADY_POLLS, 0)
            self.next_poll_at = now + min(backoff, MAX_POLL_INTERVAL)

    def callback_poll_at(self, now=None):
        """While Luma's callbacks reach us for this row, the safety-net poll waits until well after the expected
        finish, so a generation whose callbacks work costs its create and one confirming read."""
        now = now or timezone.now()
        expected = self.expected_duration()
        return (self.submitted_at or now) + expected + max(CALLBACK_SLACK, expected / 2)

    def apply_remote(self, remote: RemoteGeneration, source: str) -> bool:
        """Apply what Luma says about this generation; returns whether the row changed state.

        The only writer of a submitted row's state. `remote` must be Luma's own answer (a create's answer, a
        read, a list item); a callback's body is never passed here whole (see `apply_progress` and `nudge`).
        Moves forward only, except that Luma's word overturns a failure we decided locally; ignores repeats
        and stale news (answers arrive out of order), keeps fresher asset URLs, records an event for every
        change, and starts the archive when the generation completes.
        """
        from . import tasks

        if self._is_old_news(remote):
            # States never move back, so news behind this copy is behind the database too. A poll that found
            # only old news still waits its turn before the next one.
            if not self.is_terminal:
                now = timezone.now()
                Generation.objects.filter(pk=self.pk, next_poll_at__lte=now).update(next_poll_at=now + poll_every())
            return False
        heading = f"{source}: Luma says {remote.state or 'nothing'}"
        with transaction.atomic():
            # Optimistic first: merge into this copy and write it only if nobody applied news in between
            # (state and last_news_at unchanged). Under a race, merge again into a locked fresh copy.
            seen = {"state": self.state, "last_news_at": self.last_news_at, "failed_locally": self.failed_locally}
            row, outcome = self, self._merge(remote, source, heading)
            if outcome is not None:
                moved = outcome[0]
                fields = [f for f in REMOTE_FIELDS if f != "archive_state" or (moved and row.state == State.COMPLETED)]
                if not Generation.objects.filter(pk=self.pk, **seen).update(**{f: getattr(row, f) for f in fields}):
                    row = Generation.objects.select_for_update().get(pk=self.pk)
                    outcome = row._merge(remote, source, heading)
                    if outcome is not None:
                        row.save(update_fields=REMOTE_FIELDS)
            if outcome is not None and outcome[0]:
                row.record(source, outcome[1], remote.raw)
                if row.state == State.COMPLETED:
                    tasks.enqueue("archive", row.pk)
                if row.is_terminal:
                    tasks.enqueue("refresh_credits")  # the badge shows what this one cost (or that it was refunded)
                    tasks.enqueue("notify_ended", row.pk)  # its owner hears of it (notify.py; once per outcome)
                    if Generation.objects.pending().exists():
                        tasks.enqueue("admit")
        if row is not self:
            # The optimistic merge changed this copy; it must show what the database holds.
            for name in REMOTE_FIELDS:
                setattr(self, name, getattr(row, name))
        return outcome is not None and outcome[0]

    def apply_progress(self, state: str, source: str) -> bool:
        """A callback's report that Luma has queued or started the generation: shown on the card at once.

        Only a forward move between the in-progress states, never an id, an asset URL or an outcome, so a
        forged callback can at most show "dreaming" early; the final word always comes from Luma's answers.
        Callbacks evidently reach us, so the safety-net poll moves to well after the expected finish
        (`callback_poll_at`). One conditional UPDATE and one event: a callback stays cheap.
        """
        if state not in (State.QUEUED, State.DREAMING) or not self.luma_id:
            return False
        now = timezone.now()
        behind = [s for s, rank in STATE_RANK.items() if rank < STATE_RANK[State(state)]]
        latest = self.callback_poll_at(now)
        fields = {"state": state, f"{state}_at": now, "next_poll_at": Greatest(Coalesce("next_poll_at", latest), latest)}
        if not Generation.objects.filter(pk=self.pk, state__in=behind, luma_id=self.luma_id).update(**fields):
            return False
        self.state = state
        setattr(self, f"{state}_at", now)
        self.record(source, f"{source}: Luma says {state}; now {self.get_state_display().lower()}")
        return True

    def nudge(self, claimed_id: str = "") -> bool:
        """A callback said something final (or came before we knew Luma's id): ask Luma, at most once per
        NUDGE_EVERY. Returns whether a confirming read was queued. A finished row Luma already confirmed
        has nothing left to learn, so callbacks about it cost nothing."""
        from . import tasks

        if self.is_terminal and not self.failed_locally:
            return False
        now = timezone.now()
        if Generation.objects.filter(pk=self.pk).filter(
            Q(nudged_at__isnull=True) | Q(nudged_at__lte=now - NUDGE_EVERY)
        ).update(nudged_at=now):
            tasks.enqueue("confirm", self.pk, claimed_id if not self.luma_id else "")
            return True
        return False

    def _merge(self, remote: RemoteGeneration, source: str, summary: str) -> tuple[bool, str] | None:
        """Fold Luma's answer into this instance (unsaved): (whether the state moved, the event summary),
        or None when the answer is not about this row."""
        now = timezone.now()
        if self.luma_id and remote.id and remote.id != self.luma_id:
            self.record(source, f"{source}: ignored news about another generation ({remote.id})")
            return None
        if remote.state not in LUMA_STATES:
            return None
        overturn = self.state == State.FAILED and self.failed_locally
        moved = overturn or (STATE_RANK[State(remote.state)] > STATE_RANK[State(self.state)] and not self.is_terminal)
        if not self.luma_id and remote.id:
            self.luma_id = remote.id
        self.last_news_at = now
        if remote.created_at:
            self.luma_created_at = remote.created_at
        if remote.model:
            self.luma_model = remote.model
        if moved or remote.state == self.state:
            # A repeat of the current state may carry fresh asset URLs (expired links are re-issued).
            self.video_url = remote.video_url or self.video_url
            self.image_url = remote.image_url or self.image_url
            self.progress_video_url = remote.progress_video_url or ""
            self.raw = remote.raw
        if moved:
            if overturn:
                summary += f"; we had given up ({self.reason}), Luma's word stands"
                self.failed_locally = False
                self.reason, self.failed_at = "", None
            self.state = remote.state
            self.submitted_at = self.submitted_at or now
            setattr(self, f"{remote.state}_at", now)
            if remote.state == State.FAILED:
                self.reason = remote.failure_reason or "Luma did not say why."
            if remote.state == State.COMPLETED:
                self.archive_state = ArchiveState.WAITING
            self.polls_without_news = 0
            self.schedule_next_poll(now, news=True)
            summary += f"; now {self.get_state_display().lower()}"
        elif not self.is_terminal:
            self.schedule_next_poll(now, news=remote.state != self.state)
        return moved, summary

    def _is_old_news(self, remote: RemoteGeneration) -> bool:
        if remote.state not in STATE_RANK or not self.luma_id or remote.id != self.luma_id or self.failed_locally:
            return False
        behind = STATE_RANK[State(remote.state)] < STATE_RANK[State(self.state)]
        repeat_of_final = remote.state == self.state and self.is_terminal and (
            (remote.video_url or self.video_url) == self.video_url and (remote.image_url or self.image_url) == self.image_url
        )
        return behind or repeat_of_final

    # Before Luma knows a row, the submit job moves it with these conditional updates; each returns
    # whether this caller won the row, so a redelivered task does nothing.

    def admit(self) -> bool:
        """pending -> submitting, with a deadline after which the sweep re-enqueues a lost submit task."""
        return bool(
            Generation.objects.filter(pk=self.pk, state=State.PENDING).update(
                state=State.SUBMITTING, next_poll_at=timezone.now() + timedelta(seconds=settings.LUMA_STALL_SECONDS)
            )
        )

    def claim_submit(self) -> bool:
        """Stamp submitted_at before the create is sent: the stamp is the promise to send at most once."""
        claimed = Generation.objects.filter(pk=self.pk, state=State.SUBMITTING, submitted_at__isnull=True).update(
            submitted_at=timezone.now(), submit_attempts=models.F("submit_attempts") + 1, preparing=True
        )
        if claimed:
            self.refresh_from_db()
        return bool(claimed)

    def about_to_send(self) -> bool:
        """The inputs are uploaded and the create goes next: from now on a stall means its answer may be lost.
        False when the sweep gave the row back to the queue meanwhile (the job preparing it looked dead): then
        this job must not send it."""
        sending = Generation.objects.filter(pk=self.pk, state=State.SUBMITTING, preparing=True).update(
            preparing=False, submitted_at=timezone.now()
        )
        if sending:
            self.refresh_from_db()
        return bool(sending)

    def requeue(self, why: str, source: str = "submit") -> None:
        """The create provably never reached Luma (a 429, or no connection was made): wait again as pending,
        keeping the place in the queue. A create whose outcome is unknown never comes back here."""
        if Generation.objects.filter(pk=self.pk, state=State.SUBMITTING).update(
            state=State.PENDING, submitted_at=None, next_poll_at=None, preparing=False
        ):
            self.refresh_from_db()
            self.record(source, why)

    def mark_unconfirmed(self, why: str, source: str = "submit") -> None:
        """The create may have reached Luma but its answer was lost: the sweep looks for it by its token."""
        if Generation.objects.filter(pk=self.pk, state=State.SUBMITTING).update(
            state=State.UNCONFIRMED, next_poll_at=timezone.now() + timedelta(seconds=15), preparing=False
        ):
            self.refresh_from_db()
            self.record(source, why)

    def reject(self, reason: str, source: str = "submit") -> None:
        """Luma refused the request (400/422) or it can never be sent: a terminal outcome, nothing billed."""
        from . import tasks

        now = timezone.now()
        # A request held over budget is refused here too, when staff turn it down.
        updated = Generation.objects.filter(pk=self.pk, state__in=(State.HELD, *LIVE_STATES)).update(
            state=State.REJECTED, reason=reason, failed_at=now, next_poll_at=None
        )
        if updated:
            self.refresh_from_db()
            self.record(source, f"rejected: {reason}")
            tasks.enqueue("admit")
            tasks.enqueue("notify_ended", self.pk)

    def fail(self, reason: str, source: str, recheck: bool = True) -> None:
        """We give up on a submitted generation ourselves (Luma lost it, or a create never showed up).

        A belief, not Luma's word: the row is checked again a few times (unless there is nothing to check
        with, `recheck=False`), and whatever Luma says later (also a generation carrying this row's token)
        overturns it through apply_remote."""
        from . import tasks

        now = timezone.now()
        updated = Generation.objects.filter(pk=self.pk, state__in=LIVE_STATES).update(
            state=State.FAILED, reason=reason, failed_at=now, failed_locally=True,
            next_poll_at=now + RECHECK_AFTER if recheck else None, polls_without_news=0,
        )
        if updated:
            self.refresh_from_db()
            self.record(source, f"failed: {reason}")
            tasks.enqueue("admit")
            tasks.enqueue("notify_ended", self.pk)

    def recheck_later(self, now=None) -> None:
        """A locally failed row found nothing new: look again later, backing off, then stop."""
        now = now or timezone.now()
        tries = self.polls_without_news + 1
        Generation.objects.filter(pk=self.pk, state=State.FAILED, failed_locally=True).update(
            polls_without_news=tries, next_poll_at=now + RECHECK_AFTER * 2**tries if tries < RECHECKS else None
        )


class GenerationEvent(models.Model):
    """An append-only record of every state change, callback and poll of a generation."""

    class Source(models.TextChoices):
        USER = "user", "User"
        SUBMIT = "submit", "Submit"
        WEBHOOK = "webhook", "Callback"
        CHECK = "check", "Callback, checked with Luma"
        POLL = "poll", "Poll"
        SWEEP = "sweep", "Sweep"
        IMPORT = "import", "Import"
        ARCHIVE = "archive", "Archive"
        ADMIN = "admin", "Admin"
        DELETE = "delete", "Delete"

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="events")
    created_at = models.DateTimeField(default=timezone.now)
    source = models.CharField(max_length=10, choices=Source.choices)
    state = models.CharField(max_length=20, choices=State.choices)
    summary = models.CharField(max_length=300)
    data = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]

    def __str__(self) -> str:
        # As the site shows a moment (its DATETIME_FORMAT, in its time zone): the admin lists it beside the date.
        from django.utils.formats import date_format

        return f"{date_format(timezone.localtime(self.created_at), 'DATETIME_FORMAT')} {self.summary}"


class Favourite(models.Model):
    """A user's star on a generation in the shared library."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="favourites")
    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="favourites")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "generation"], name="one_favourite_per_user")]


class KeyframeImage(models.Model):
    """An uploaded file Luma fetches from us: a keyframe, a reference or a source image (re-encoded), or a source
    video (remuxed), served at an unguessable public URL (files.keyframe) only while a generation needs it."""

    class MediaType(models.TextChoices):
        IMAGE = "image", "Image"
        VIDEO = "video", "Video"

    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    file = models.FileField(upload_to="keyframes/", max_length=300)
    content_type = models.CharField(max_length=40)
    media_type = models.CharField(max_length=10, choices=MediaType.choices, default=MediaType.IMAGE)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    # Videos only: what PyAV read, so a later form post can check the file against another model's limits.
    duration = models.FloatField(null=True, blank=True, help_text="Seconds (videos).")
    codec = models.CharField(max_length=20, blank=True)
    size = models.BigIntegerField(null=True, blank=True, help_text="Bytes stored.")
    uploaded_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(default=timezone.now)
    # The same file in Luma's Agents Files API (uploaded once, when an Agents generation first uses it): Agents
    # generations name it by this id, so no public address is needed for them.
    agents_file_id = models.CharField(max_length=64, blank=True)

    @classmethod
    def from_public_url(cls, url: str) -> KeyframeImage | None:
        """The upload a /k/<token>/ address of ours names (whatever PUBLIC_BASE_URL was then), or None."""
        prefix = reverse("generations:keyframe", args=["TOKEN"]).split("TOKEN")[0]
        path = urlsplit(url or "").path
        if not path.startswith(prefix):
            return None
        return cls.objects.filter(token=path[len(prefix):].strip("/")).first()

    def public_url(self) -> str:
        return settings.PUBLIC_BASE_URL + reverse("generations:keyframe", args=[self.token])


class LumaAccount(models.Model):
    """Team-wide facts about the shared Luma account: one row."""

    paused_until = models.DateTimeField(null=True, blank=True, help_text="No creates before this (Luma said 429).")
    credit_balance = models.FloatField(null=True, blank=True, help_text="USD cents, as Luma reports it.")
    credits_checked_at = models.DateTimeField(null=True, blank=True)
    credits_error = models.CharField(max_length=300, blank=True)
    # Fetched by a job and cached here: the browser never causes a call to Luma.
    camera_motions = models.JSONField(default=list, blank=True)
    concepts = models.JSONField(default=list, blank=True)
    catalog_checked_at = models.DateTimeField(null=True, blank=True)
    # The team's monthly budget (US cents; empty: none) and what happens to a request over a budget.
    team_budget_cents = models.PositiveIntegerField(null=True, blank=True)
    budget_policy = models.CharField(max_length=10, default="refuse",
                                     choices=[("refuse", "Refuse it"), ("approval", "Hold it for staff to approve")])
    # Luma's Agents API said 429: no Agents creates before this (its limits are its own).
    agents_paused_until = models.DateTimeField(null=True, blank=True)
    # The sweep (and the follower) that runs now holds a lease, so two never overlap.
    sweep_lease_until = models.DateTimeField(null=True, blank=True)
    follow_lease_until = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "Luma account"

    @classmethod
    def get(cls) -> LumaAccount:
        account, _ = cls.objects.get_or_create(pk=1)
        return account

    @classmethod
    def take_lease(cls, name: str, now, seconds: float):
        """The lease's expiry if this caller may run `name` (sweep, follow) now, because no other run holds an
        unexpired lease; else None."""
        cls.get()
        field = f"{name}_lease_until"
        until = now + timedelta(seconds=seconds)
        free = Q(**{f"{field}__isnull": True}) | Q(**{f"{field}__lt": now})
        return until if cls.objects.filter(free, pk=1).update(**{field: until}) else None

    @classmethod
    def release_lease(cls, name: str, until) -> None:
        cls.objects.filter(pk=1, **{f"{name}_lease_until": until}).update(**{f"{name}_lease_until": None})


class CreditSnapshot(models.Model):
    """Luma's credit balance (USD cents) as read at one moment."""

    taken_at = models.DateTimeField(default=timezone.now, db_index=True)
    balance = models.FloatField(help_text="USD cents, as Luma reports it.")

    class Meta:
        ordering = ["taken_at", "id"]

    def __str__(self) -> str:
        return f"{self.taken_at:%Y-%m-%d %H:%M} {self.balance / 100:,.2f} USD"


# --- the team workspace (issue 10) ---------------------------------------------------------------------------------


class Board(models.Model):
    """A named collection (a project): shared with the team or private to its owner. A generation can sit on
    many boards."""

    name = models.CharField(max_length=80)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="boards")
    shared = models.BooleanField(default=True, help_text="Seen by the whole team; otherwise only by its owner.")
    created_at = models.DateTimeField(default=timezone.now)
    generations = models.ManyToManyField(Generation, through="BoardItem", related_name="boards")

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(Lower("name"), "owner", name="one_board_name_per_owner")]

    def __str__(self) -> str:
        return self.name

    def get_absolute_url(self) -> str:
        return reverse("generations:board", args=[self.pk])


class BoardItem(models.Model):
    board = models.ForeignKey(Board, on_delete=models.CASCADE, related_name="items")
    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="board_items")
    added_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    added_at = models.DateTimeField(default=timezone.now)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["board", "generation"], name="once_per_board")]
        indexes = [models.Index(fields=["board", "-added_at"], name="board_items_idx")]


class Comment(models.Model):
    """A comment on a generation; @username mentions notify that person."""

    MAX_LENGTH = 2000

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="comments")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    body = models.TextField(max_length=MAX_LENGTH)
    mentions = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="mentioned_in")
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]


class ShareLink(models.Model):
    """A public, unguessable link to one generation or one board, with an expiry; revoking stops it at once."""

    token = models.CharField(max_length=64, unique=True, default=new_token, editable=False)
    generation = models.ForeignKey(Generation, null=True, blank=True, on_delete=models.CASCADE, related_name="shares")
    board = models.ForeignKey(Board, null=True, blank=True, on_delete=models.CASCADE, related_name="shares")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+")
    created_at = models.DateTimeField(default=timezone.now)
    expires_at = models.DateTimeField()
    revoked_at = models.DateTimeField(null=True, blank=True)
    views = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.CheckConstraint(
            condition=Q(generation__isnull=False, board__isnull=True) | Q(generation__isnull=True, board__isnull=False),
            name="share_one_thing")]

    @property
    def is_live(self) -> bool:
        return self.revoked_at is None and self.expires_at > timezone.now()


class Preset(models.Model):
    """Every setting of the create form under a name, personal or for the team."""

    name = models.CharField(max_length=80)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="presets")
    shared = models.BooleanField(default=False)
    settings = models.JSONField(default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["name", "id"]
        constraints = [models.UniqueConstraint(Lower("name"), "owner", name="one_preset_name_per_owner")]


class Profile(models.Model):
    """A team member's own settings: monthly budget, notifications."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="profile")
    monthly_budget_cents = models.PositiveIntegerField(null=True, blank=True,
                                                       help_text="US cents a month; empty: no personal budget.")
    notify_browser = models.BooleanField(default=False)
    notify_email = models.BooleanField(default=False)

    @classmethod
    def of(cls, user) -> Profile:
        profile, _ = cls.objects.get_or_create(user=user)
        return profile

    @classmethod
    def read(cls, user) -> Profile:
        """The user's profile for showing a page: read once per user object and never written (an unsaved one
        with the defaults when there is none yet)."""
        cached = getattr(user, "_lumaweb_profile", None)
        if cached is None:
            cached = cls.objects.filter(user=user).first() or cls(user=user)
            user._lumaweb_profile = cached
        return cached


class Notification(models.Model):
    """Something a team member should hear about: their generation finished or failed, a comment, a mention."""

    class What(models.TextChoices):
        FINISHED = "finished", "Finished"
        FAILED = "failed", "Failed"
        COMMENT = "comment", "Comment"
        MENTION = "mention", "Mention"

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="notifications")
    what = models.CharField(max_length=10, choices=What.choices)
    generation = models.ForeignKey(Generation, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    text = models.CharField(max_length=300)
    created_at = models.DateTimeField(default=timezone.now)
    read_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "read_at", "-created_at"], name="unread_idx")]
