"""Run settings of the Luma simulator (durations, time scale, limits, assets, credits) and the price list.

Every field can be set on the command line and changed at runtime through POST /_sim/config.
"""

import math
from dataclasses import dataclass, field, fields, replace

# Prices in USD cents, charged when a generation is created and refunded if it fails (Luma's FAQ). Video is billed
# by output pixels as luma-api.md section 7 publishes it: every frame of a 16:9 clip at 24 fps (another aspect
# ratio has about the same area), ray-2 $0.01582 and ray-flash-2 $0.00544 per million pixels, so ray-2 720p 5 s is
# $1.75. Modify and reframe cost the model's price for a clip of the source's resolution and length (section 6); an
# upscale is a clip at its target resolution as long as its source. Image and audio prices are not published: the
# same guesses as the app's. These are the numbers generations/pricing.py estimates with (this package must not
# import the app); tests/test_simulator.py checks that the two agree.
USD_PER_MEGAPIXEL = {"ray-2": 0.01582, "ray-flash-2": 0.00544}
FRAMES_PER_SECOND = 24
RESOLUTION_PIXELS = {"540p": 960 * 540, "720p": 1280 * 720, "1080p": 1920 * 1080, "4k": 3840 * 2160}
PHOTON = {"photon-1": 2.0, "photon-flash-1": 1.0}  # one image (a guess)
AUDIO = 20.0  # a guess
UPSCALE_DEFAULT = "1080p"


def resolution_of(width: int, height: int) -> str:
    """The resolution whose 16:9 frame has about the area of width x height (1080 x 1920 is 1080p)."""
    area = max(1, width * height)
    return min(RESOLUTION_PIXELS, key=lambda name: abs(math.log(RESOLUTION_PIXELS[name] / area)))


def cost_of(kind: str, model: str, resolution: str = "720p", seconds: float = 5.0) -> float:
    """What a create costs, in whole cents: an image or audio its price; any video its pixels (resolution is the
    output's, or for modify and reframe the source's; seconds the clip's, or the source's)."""
    if kind in ("image", "reframe_image"):
        return PHOTON.get(model, PHOTON["photon-1"])
    if kind == "add_audio":
        return AUDIO
    megapixels = RESOLUTION_PIXELS.get(resolution, RESOLUTION_PIXELS["720p"]) * FRAMES_PER_SECOND * seconds / 1e6
    return float(round(megapixels * USD_PER_MEGAPIXEL.get(model, USD_PER_MEGAPIXEL["ray-2"]) * 100))


@dataclass
class Config:
    queued_seconds: float = 3.0
    dreaming_seconds: float = 20.0
    jitter: float = 0.15  # each duration varies by up to +/- this share
    time_scale: float = 1.0  # multiplies both durations (0.05 makes a generation take about a second)
    limits: bool = True
    concurrent_limit: int = 10  # Ray: queued + dreaming at once (Luma "Build" tier)
    creates_per_minute: int = 20
    image_concurrent_limit: int = 40  # Photon
    image_creates_per_minute: int = 80
    asset_bytes: int = 0  # pad each video to at least this many bytes
    asset_rate: int = 0  # serve asset downloads at most this many bytes per second (0: as fast as possible)
    failure_rate: float = 0.0  # share of generations that fail with "Job failed"
    credits: float = 100000.0  # start balance in USD cents
    remote_keyframes: str = "accept"  # what a non-loopback keyframe URL does: accept | fail (never fetched)
    allow_remote_callbacks: bool = False
    callback_retries: int = 3
    callback_timeout: float = 5.0
    api_keys: list = field(default_factory=list)  # empty: any non-empty bearer key is valid

    def copy(self) -> "Config":
        return replace(self, api_keys=list(self.api_keys))

    def update(self, changes: dict) -> None:
        """Apply {name: value} with type checks; raises ValueError and changes nothing on a bad entry."""
        known = {f.name: f for f in fields(self)}
        parsed = {}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"{name}: unknown setting (known: {', '.join(sorted(known))})")
            try:
                parsed[name] = self._coerce(name, known[name].type, value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name}: {exc}") from None
        for name, value in parsed.items():
            setattr(self, name, value)

    @staticmethod
    def _coerce(name: str, kind, value):
        if kind in (bool, "bool"):
            if isinstance(value, str):
                value = {"true": True, "1": True, "false": False, "0": False}[value.lower()]
            if not isinstance(value, bool):
                raise ValueError("expected true or false")
            return value
        if kind in (list, "list"):
            if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
                raise ValueError("expected a list of non-empty strings")
            return list(value)
        if kind in (str, "str"):
            if name == "remote_keyframes" and value not in ("accept", "fail"):
                raise ValueError("expected 'accept' or 'fail'")
            return str(value)
        if isinstance(value, bool):
            raise TypeError("expected a number")
        number = int(value) if kind in (int, "int") else float(value)
        if number < 0:
            raise ValueError("must not be negative")
        if name == "failure_rate" and number > 1:
            raise ValueError("must be between 0 and 1")
        return number

    def public(self) -> dict:
        """The settings as JSON, without the API keys themselves."""
        data = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "api_keys"}
        data["api_keys_restricted"] = len(self.api_keys)
        return data
