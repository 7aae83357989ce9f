"""Run settings of the Luma simulator (durations, time scale, limits, assets, credits) and the price list.

Every field can be set on the command line and changed at runtime through POST /_sim/config.
"""

from dataclasses import dataclass, field, fields, replace

# Prices in USD cents, charged when a generation is created and refunded if it fails (Luma's FAQ).
# Luma publishes no per-request table for this API, so these are round figures of the right magnitude.
RAY_5S_540P = {"ray-2": 40.0, "ray-flash-2": 14.0}  # a 5 s clip at 540p
RESOLUTION_FACTOR = {"540p": 1, "720p": 2, "1080p": 4, "4k": 16}
DURATION_FACTOR = {"5s": 1.0, "9s": 1.8}
PHOTON = {"photon-1": 2.0, "photon-flash-1": 0.5}  # one image
MODIFY = {"ray-2": 175.0, "ray-flash-2": 60.0}  # docs: ray-2, 720p, 5 s, 16:9 is about $1.75
AUDIO = 10.0
UPSCALE_DEFAULT = "1080p"


def cost_of(kind: str, model: str, resolution: str = "720p", duration: str = "5s") -> float:
    """What a create costs: video = base x resolution x duration; upscale = half a 5 s video at the target size."""
    if kind in ("image", "reframe_image"):
        return PHOTON[model]
    if kind == "modify_video":
        return MODIFY[model]
    if kind == "add_audio":
        return AUDIO
    base = RAY_5S_540P.get(model, RAY_5S_540P["ray-2"])
    if kind == "upscale_video":
        return base * RESOLUTION_FACTOR[resolution] / 2
    return base * RESOLUTION_FACTOR[resolution] * DURATION_FACTOR[duration]


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
