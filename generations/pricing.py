"""What a generation costs, as an estimate: the one table the "spend this month" figure is built from.

Luma bills video by output pixels (luma-api.md section 7: ray-2 $0.01582 and ray-flash-2 $0.00544 per million
pixels, e.g. ray-2 720p 5 s 16:9 is about $1.75). We count every frame of a 16:9 clip at 24 fps; other aspect
ratios have about the same area. Image, upscale and audio prices are not published in our sources, so those
rows are rough guesses. Failed and rejected generations cost nothing (Luma refunds them).
"""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import Count
from django.utils import timezone

from .models import Generation, Kind, State

USD_PER_MEGAPIXEL = {"ray-2": 0.01582, "ray-flash-2": 0.00544}
FRAMES_PER_SECOND = 24
PIXELS = {"540p": 960 * 540, "720p": 1280 * 720, "1080p": 1920 * 1080, "4k": 3840 * 2160}
SECONDS = {"5s": 5, "9s": 9}


def _video_cents(model: str, resolution: str, duration: str) -> int:
    megapixels = PIXELS[resolution] * FRAMES_PER_SECOND * SECONDS[duration] / 1e6
    return round(megapixels * USD_PER_MEGAPIXEL[model] * 100)


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


def estimate_cents(kind: str, model: str = "", resolution: str = "", duration: str = "") -> int:
    """The estimated price of one completed generation, in US cents."""
    if kind == Kind.IMAGE:
        return IMAGE_CENTS.get(model, IMAGE_CENTS["photon-1"])
    if kind == Kind.ADD_AUDIO:
        return ADD_AUDIO_CENTS
    key = (
        model if model in USD_PER_MEGAPIXEL else DEFAULTS["model"],
        resolution if resolution in PIXELS else DEFAULTS["resolution"],
        duration if duration in SECONDS else DEFAULTS["duration"],
    )
    return VIDEO_CENTS[key]


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
    groups = (
        Generation.objects.filter(owner=user, state=State.COMPLETED, created_at__gte=month_start(now))
        .values("kind", "model", "resolution", "duration")
        .annotate(count=Count("id"))
        .order_by("kind", "model", "resolution", "duration")
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
            unit_cents=estimate_cents(group["kind"], group["model"], group["resolution"], group["duration"]),
        )
        for group in groups
    ]
