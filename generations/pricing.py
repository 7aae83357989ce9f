"""What a generation costs, as an estimate: the one table the "spend this month" figure is built from.

Luma bills video by output pixels (luma-api.md section 7: ray-2 $0.01582 and ray-flash-2 $0.00544 per million
pixels, e.g. ray-2 720p 5 s 16:9 is about $1.75). We count every frame of a 16:9 clip at 24 fps; other aspect
ratios have about the same area at a resolution (720p 1:1 is 960 x 960, the area of 1280 x 720), so the ratio does
not change the estimate. Modify and reframe cost what the underlying model costs (section 6) for a clip of the
source's resolution and length; an upscale is a clip at its target resolution, as long as its source. Image and
audio prices are not published in our sources, so those rows are rough guesses. Failed and rejected generations
cost nothing (Luma refunds them).

The Luma simulator charges from its own copy of these numbers (simulator/config.py, which must not import the
app); tests/test_simulator.py checks that the two agree, so a local run's balance matches lumaweb's estimate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count
from django.utils import timezone

from .models import IMAGE_KINDS, Generation, KeyframeImage, Kind, State

USD_PER_MEGAPIXEL = {"ray-2": 0.01582, "ray-flash-2": 0.00544}
FRAMES_PER_SECOND = 24
PIXELS = {"540p": 960 * 540, "720p": 1280 * 720, "1080p": 1920 * 1080, "4k": 3840 * 2160}
SECONDS = {"5s": 5, "9s": 9}


def video_cents(model: str, resolution: str, seconds: float) -> int:
    """A clip of `seconds` at `resolution`, every frame billed by its pixels."""
    megapixels = PIXELS[resolution] * FRAMES_PER_SECOND * seconds / 1e6
    return round(megapixels * USD_PER_MEGAPIXEL[model] * 100)


def _video_cents(model: str, resolution: str, duration: str) -> int:
    return video_cents(model, resolution, SECONDS[duration])


def seconds_in(duration: str) -> float | None:
    """5.0 for "5s" (a request's duration), 7.3 for "7.3s" (a source's measured length); None when unknown."""
    try:
        seconds = float(str(duration or "").removesuffix("s"))
    except ValueError:
        return None
    return seconds if 0 < seconds < 3600 else None


def resolution_of(width: int, height: int) -> str:
    """The resolution whose 16:9 frame has about the area of width x height (1080 x 1920 is 1080p)."""
    area = max(1, width * height)
    return min(PIXELS, key=lambda name: abs(math.log(PIXELS[name] / area)))


# (kind group, model, resolution, duration) -> US cents. "video" covers text/image to video, extend,
# reverse extend and interpolate; an upscale is priced as a new clip at its target resolution.
VIDEO_CENTS = {
    (model, resolution, duration): _video_cents(model, resolution, duration)
    for model in USD_PER_MEGAPIXEL
    for resolution in PIXELS
    for duration in SECONDS
}
IMAGE_CENTS = {"photon-1": 2, "photon-flash-1": 1}  # guess
ADD_AUDIO_CENTS = 20  # guess
DEFAULTS = {"model": "ray-2", "resolution": "720p", "duration": "5s"}


# The Agents API's published prices (luma-agents-api.md section 13), in US cents.
AGENTS_IMAGE_CENTS = {"uni-1": (4.04, 4.34), "uni-1-max": (10.0, 10.3)}  # (image, edit or first reference)
AGENTS_REFERENCE_CENTS = 0.3  # each reference after the first
LAYERING_CENTS = 8.0  # guess: no published price
# ray-3.2 per clip: (resolution, duration, HDR, EXR) -> cents; 360p, and HDR at 10 s, are not published (guesses).
RAY32_CENTS = {
    ("360p", "5s"): 8, ("360p", "10s"): 24, ("540p", "5s"): 15, ("540p", "10s"): 45,
    ("720p", "5s"): 30, ("720p", "10s"): 90, ("1080p", "5s"): 120, ("1080p", "10s"): 360,
}
RAY32_HDR_FACTOR, RAY32_EXR_FACTOR = 2.0, 1.5  # 720p 5 s: SDR $0.30, HDR $0.60, HDR+EXR $0.90
REFRAME_CENTS_PER_SECOND = {"360p": 6, "540p": 9, "720p": 12, "1080p": 36}  # $0.06-$0.36 a second by resolution
AGENTS_MODELS = ("ray-3.2", *AGENTS_IMAGE_CENTS)


def agents_cents(kind: str, model: str, resolution: str = "", duration: str = "", options: dict | None = None) -> int:
    """The estimated price of one completed Agents generation, in US cents."""
    options = options or {}
    if model in AGENTS_IMAGE_CENTS:
        if kind == Kind.LAYERING:
            return round(LAYERING_CENTS)
        plain, first = AGENTS_IMAGE_CENTS[model]
        references = len(options.get("image_ref") or []) + (1 if kind == Kind.IMAGE_EDIT else 0)
        return round(plain if not references else first + AGENTS_REFERENCE_CENTS * (references - 1))
    resolution = resolution if resolution in REFRAME_CENTS_PER_SECOND else "720p"
    duration = duration if duration in ("5s", "10s") else "5s"
    if kind == Kind.REFRAME_VIDEO:
        return REFRAME_CENTS_PER_SECOND[resolution] * int(duration.rstrip("s"))
    cents = RAY32_CENTS[resolution, duration]
    if options.get("hdr"):
        cents *= RAY32_HDR_FACTOR * (RAY32_EXR_FACTOR if options.get("exr_export") else 1)
    return round(cents)


def estimate_cents(kind: str, model: str = "", resolution: str = "", duration: str = "",
                   options: dict | None = None) -> int:
    """The estimated price of one completed generation, in US cents."""
    if model in AGENTS_MODELS:
        return agents_cents(kind, model, resolution, duration, options)
    if kind in IMAGE_KINDS:
        return IMAGE_CENTS.get(model, IMAGE_CENTS["photon-1"])
    if kind == Kind.ADD_AUDIO:
        return ADD_AUDIO_CENTS
    # A source's length may be any number of seconds (a modify, reframe or upscale is as long as its source).
    return video_cents(model if model in USD_PER_MEGAPIXEL else DEFAULTS["model"],
                       resolution if resolution in PIXELS else DEFAULTS["resolution"],
                       seconds_in(duration) or SECONDS[DEFAULTS["duration"]])


# The create form's "what" (forms.WHAT) and the kind whose price applies; a video's keyframes do not change it.
KIND_OF_WHAT = {"video": Kind.TEXT_TO_VIDEO, "image": Kind.IMAGE, "modify": Kind.MODIFY_VIDEO,
                "reframe_video": Kind.REFRAME_VIDEO, "reframe_image": Kind.REFRAME_IMAGE}
MODEL_NAMES = {"ray-2": "Ray 2", "ray-flash-2": "Ray Flash 2", "photon-1": "Photon 1", "photon-flash-1": "Photon Flash 1",
               "ray-3.2": "Ray 3.2", "uni-1": "Uni-1", "uni-1-max": "Uni-1 Max"}


@dataclass
class Estimate:
    """What the create form (or an upscale or add-audio page) is about to ask for, and its price: `cents` for one
    take, `count` takes of it ("How many")."""

    cents: int
    kind: str
    model: str
    resolution: str
    duration: str
    aspect_ratio: str
    count: int = 1
    length: str = ""  # a clip as long as its source: how long, in words ("9 s, as long as #9")

    @property
    def usd(self) -> float:
        return self.cents / 100

    @property
    def total_cents(self) -> int:
        return self.cents * self.count

    @property
    def total_usd(self) -> float:
        return self.total_cents / 100

    @property
    def words(self) -> str:
        """Ray 2 · 720p · 5 s · 16:9: what the price depends on, as chosen."""
        parts = [MODEL_NAMES.get(self.model, self.model)]
        if self.kind == Kind.ADD_AUDIO:
            parts.append("a guess: Luma publishes no price for sound")
        elif self.kind not in IMAGE_KINDS:
            parts.append(self.resolution)
            parts.append(self.length or self.duration.replace("s", " s"))
        if self.aspect_ratio:
            parts.append(self.aspect_ratio)
        return " · ".join(part for part in parts if part)


@dataclass
class Source:
    """The video a modify, reframe or upscale works on, as far as we know it: what it is called on the page, its
    resolution ("" when unknown), length in seconds (None when unknown) and aspect ratio."""

    name: str
    resolution: str
    seconds: float | None
    aspect_ratio: str

    @classmethod
    def of_row(cls, row: Generation) -> Source:
        """A library video: what it was asked for at, which a modify or reframe of it copies (create_form)."""
        return cls(f"#{row.pk}", row.resolution if row.resolution in PIXELS else "", seconds_in(row.duration),
                   row.aspect_ratio)


def source_of(value, user=None) -> Source | None:
    """The source video the create form names: a library pick (its row), or the user's own upload sent ahead
    (what PyAV measured); None until one is chosen."""
    from .create_form import closest_ratio  # the form's own import of this module comes first
    from .sources import finished

    if value("media_from") == "upload":
        token = value("video_upload")
        if not token or user is None or not user.is_authenticated:
            return None
        stored = KeyframeImage.objects.filter(token=token, uploaded_by=user,
                                              media_type=KeyframeImage.MediaType.VIDEO).first()
        if stored is None:
            return None
        return Source("the uploaded video", resolution_of(stored.width, stored.height), stored.duration,
                      closest_ratio(stored.width, stored.height))
    pk = str(value("video_source") or "")
    row = finished("video").filter(pk=int(pk)).first() if pk.isdigit() else None
    return Source.of_row(row) if row else None


def _as_long_as(source: Source | None) -> tuple[str, float, str]:
    """The resolution, seconds and words of a clip as long as its source: 720p and 5 s while not known."""
    if source is None:
        return "", SECONDS[DEFAULTS["duration"]], "as long as the source (720p and 5 s until you choose it)"
    resolution = source.resolution or DEFAULTS["resolution"]
    if source.seconds is None:
        return resolution, SECONDS[DEFAULTS["duration"]], f"5 s assumed ({source.name}'s length is not known)"
    return resolution, source.seconds, f"{round(source.seconds, 1):g} s, as long as {source.name}"


def _source_estimate(value, kind: str, ratio: str, user) -> Estimate:
    """Modify and reframe video: the model's price for a clip of the source's resolution and length. A modify
    keeps the source's frame; a reframe makes the chosen aspect ratio."""
    model = value("model") if value("model") in USD_PER_MEGAPIXEL else DEFAULTS["model"]
    source = source_of(value, user)
    resolution, seconds, length = _as_long_as(source)
    if kind == Kind.MODIFY_VIDEO:
        ratio = source.aspect_ratio if source else ""
    cents = video_cents(model, resolution or DEFAULTS["resolution"], seconds)
    return Estimate(cents, kind, model, resolution, "", ratio, length=length)


def action_estimate(kind: str, source: Generation, resolution: str = "") -> Estimate:
    """The upscale and add-audio pages: what the new generation from `source` is estimated to cost (the row it
    makes keeps the source's model and length, and an upscale's target resolution; forms.py)."""
    resolution = resolution or source.resolution
    cents = estimate_cents(kind, source.model, resolution, source.duration)
    if kind == Kind.ADD_AUDIO:
        return Estimate(cents, kind, source.model, "", "", "")
    shown, _seconds, length = _as_long_as(Source.of_row(source))
    return Estimate(cents, kind, source.model, resolution if resolution in PIXELS else shown, "", "", length=length)


def estimate_for(value, user=None) -> Estimate:
    """The price of what the create form would ask for; `value(name)` reads one of its fields (a bound form's
    data, an unbound form's initial value, or the estimate endpoint's query), anything unknown falls back to
    Luma's defaults. An Agents model adds what its price depends on to the words: HDR, EXR, references, layers.
    Modify and reframe are priced from their source (`user`'s upload, or the library video picked), and a set
    of "How many" takes costs that many times one."""
    estimate = _one_take(value, user)
    count = str(value("count") or "")
    estimate.count = int(count) if count.isdigit() and 1 <= int(count) <= 4 else 1
    return estimate


def _one_take(value, user) -> Estimate:
    what = value("what") or "video"
    kind = {**KIND_OF_WHAT, "image_edit": Kind.IMAGE_EDIT, "layering": Kind.LAYERING}.get(what, Kind.TEXT_TO_VIDEO)
    ratio = value("aspect_ratio") or ""
    if kind in IMAGE_KINDS:
        model = value("image_model")
        if model in AGENTS_IMAGE_CENTS:
            return _agents_image_estimate(value, kind, model, ratio)
        model = model if model in IMAGE_CENTS else "photon-1"
        resolution = duration = ""
    elif value("model") == "ray-3.2":
        resolution = value("resolution") if value("resolution") in REFRAME_CENTS_PER_SECOND else "720p"
        duration = value("duration") if value("duration") in ("5s", "10s") else "5s"
        hdr = value("hdr") in ("on", "true", "True", "1") and kind != Kind.REFRAME_VIDEO
        exr = hdr and value("exr_export") in ("on", "true", "True", "1")
        cents = agents_cents(kind, "ray-3.2", resolution, duration, {"hdr": hdr, "exr_export": exr})
        shown = resolution + (" HDR + EXR" if exr else " HDR" if hdr else "")
        length = "as long as the source (5 s assumed)" if kind in (Kind.MODIFY_VIDEO, Kind.REFRAME_VIDEO) else ""
        return Estimate(cents, kind, "ray-3.2", shown, duration, "" if kind == Kind.MODIFY_VIDEO else ratio,
                        length=length)
    elif kind in (Kind.MODIFY_VIDEO, Kind.REFRAME_VIDEO):
        return _source_estimate(value, kind, ratio, user)
    else:
        model = value("model") if value("model") in USD_PER_MEGAPIXEL else DEFAULTS["model"]
        resolution = value("resolution") if value("resolution") in PIXELS else DEFAULTS["resolution"]
        duration = value("duration") if value("duration") in SECONDS else DEFAULTS["duration"]
    return Estimate(estimate_cents(kind, model, resolution, duration or DEFAULTS["duration"]), kind, model,
                    resolution, duration, ratio)


def _agents_image_estimate(value, kind: str, model: str, ratio: str) -> Estimate:
    """Uni-1 and Uni-1 Max: the price grows with each reference (library picks and chosen files)."""
    if kind == Kind.LAYERING:
        layers = value("layering_resolution") if value("layering_resolution") in ("1k", "2k") else "1k"
        return Estimate(agents_cents(kind, model), kind, model, "", "", f"{layers} layers")
    picked = sum(1 for n in range(1, 10) if value(f"uni_ref_{n}"))
    files = value("uni_ref_files")
    count = min(9, picked + (int(files) if str(files).isdigit() else 0))
    cents = agents_cents(kind, model, options={"image_ref": [{}] * count})
    words = [ratio if kind == Kind.IMAGE else "", f"{count} reference{'s' if count != 1 else ''}" if count else ""]
    return Estimate(cents, kind, model, "", "", " · ".join(word for word in words if word))


@dataclass
class SpendLine:
    kind: str
    kind_label: str
    model: str
    resolution: str
    duration: str
    count: int
    unit_cents: int

    @property
    def total_cents(self) -> int:
        return self.count * self.unit_cents

    @property
    def unit_usd(self) -> float:
        return self.unit_cents / 100

    @property
    def total_usd(self) -> float:
        return self.total_cents / 100


def month_start(now: datetime | None = None) -> datetime:
    now = timezone.localtime(now or timezone.now())
    return now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def spend_this_month(user, now: datetime | None = None) -> list[SpendLine]:
    """The user's completed generations created this month, grouped by what sets their price.

    Deleted generations count too: Luma billed them all the same.
    """
    return spend_between(month_start(now), None, user)


def spend_between(start: datetime, end: datetime | None = None, user=None, provider: str = "") -> list[SpendLine]:
    """Completed generations created from `start` (to `end`), by `user` or the whole team, of one of Luma's APIs
    or both, grouped by price."""
    rows = Generation.objects.filter(state=State.COMPLETED, created_at__gte=start)
    if provider:
        rows = rows.filter(provider=provider)
    if end is not None:
        rows = rows.filter(created_at__lt=end)
    if user is not None:
        rows = rows.filter(owner=user)
    groups = (
        rows
        .values("kind", "model", "resolution", "duration", "price_cents")
        .annotate(count=Count("id"))
        .order_by("kind", "model", "resolution", "duration", "price_cents")
    )
    labels = dict(Kind.choices)
    return [
        SpendLine(
            kind=group["kind"],
            kind_label=labels.get(group["kind"], group["kind"]),
            model=group["model"],
            resolution=group["resolution"],
            duration=group["duration"],
            count=group["count"],
            unit_cents=group["price_cents"],  # as estimated when it was requested, options (HDR, references) included
        )
        for group in groups
    ]
