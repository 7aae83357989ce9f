"""Fault injection for the Luma simulator: what can go wrong, switchable per run (CLI) or at runtime (/_sim/faults).

A "chance" fault takes a probability (a float, 0.0 to 1.0) or, as a JSON integer N >= 1, "the next N times".
A "window" fault takes seconds: it is on from the moment it is set (or the simulator starts) for that long.
"""

import random
import time
import threading
from dataclasses import dataclass, field, fields

# Faults that fire by chance (probability) or for the next N occurrences.
CHANCE_FAULTS = {
    "drop_callbacks": "a callback is never sent",
    "duplicate_callbacks": "a callback is sent twice",
    "reorder_callbacks": "the dreaming callback is held back and sent after the final one",
    "get_5xx": "a GET to the API answers 500/502/503",
    "burst_429": "any API request answers 429 with Retry-After: 1",
    "cut_downloads": "an asset download sends its headers, then half the bytes, then closes",
    "drop_after_create": "a create is accepted (and billed), then the connection closes unanswered",
}
# Faults that take a number of seconds (0 switches them off).
SECONDS_FAULTS = {
    "delay_callbacks": "each callback waits this long before it is sent",
    "expire_asset_urls": "asset URLs are signed and expire after this many seconds (403 afterwards)",
    "slow_responses": "every API answer is delayed this long",
    "list_500_for": "GET /generations (the list) answers 500 for this many seconds from now, then works again",
}
# Seconds faults that close by themselves: the value is a window that starts when it is set.
WINDOW_FAULTS = ("list_500_for",)


def parse_chance(value) -> float | int:
    """A JSON int >= 1 is a count; any other number is a probability. Strings come from the command line."""
    if isinstance(value, str):
        value = float(value) if any(c in value for c in ".eE") else int(value)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {value!r}")
    if value < 0:
        raise ValueError("must not be negative")
    if isinstance(value, float) and value > 1:
        raise ValueError("a probability must be between 0 and 1 (use an integer for 'the next N times')")
    return value


def parse_seconds(value) -> float:
    if isinstance(value, bool):
        raise TypeError("expected a number of seconds")
    value = float(value)
    if value < 0:
        raise ValueError("must not be negative")
    return value


@dataclass
class Faults:
    drop_callbacks: float | int = 0
    duplicate_callbacks: float | int = 0
    reorder_callbacks: float | int = 0
    get_5xx: float | int = 0
    burst_429: float | int = 0
    cut_downloads: float | int = 0
    drop_after_create: float | int = 0
    delay_callbacks: float = 0.0
    expire_asset_urls: float = 0.0
    slow_responses: float = 0.0
    list_500_for: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)
    _until: dict = field(default_factory=dict, repr=False, compare=False)  # window fault -> monotonic end

    def __post_init__(self) -> None:
        for name in WINDOW_FAULTS:
            self._until[name] = time.monotonic() + getattr(self, name)

    def update(self, changes: dict) -> None:
        """Apply {name: value}; raises ValueError naming the offending key, and changes nothing then."""
        parsed = {}
        for name, value in changes.items():
            try:
                if name in CHANCE_FAULTS:
                    parsed[name] = parse_chance(value)
                elif name in SECONDS_FAULTS:
                    parsed[name] = parse_seconds(value)
                else:
                    known = ", ".join(sorted([*CHANCE_FAULTS, *SECONDS_FAULTS]))
                    raise ValueError(f"unknown fault (known: {known})")
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name}: {exc}") from None
        with self._lock:
            for name, value in parsed.items():
                setattr(self, name, value)
                if name in WINDOW_FAULTS:
                    self._until[name] = time.monotonic() + value

    def fires(self, name: str, rng: random.Random) -> bool:
        """Roll a chance fault once; a count fault is used up as it fires; a window fault fires while open."""
        if name in WINDOW_FAULTS:
            return self.seconds(name) > 0
        with self._lock:
            value = getattr(self, name)
            if isinstance(value, int) and value >= 1:
                setattr(self, name, value - 1)
                return True
            return bool(value) and rng.random() < value

    def seconds(self, name: str) -> float:
        """A seconds fault's value; for a window fault, the seconds it stays open from now."""
        if name in WINDOW_FAULTS:
            return max(0.0, round(self._until[name] - time.monotonic(), 3))
        return getattr(self, name)

    def as_dict(self) -> dict:
        return {f.name: self.seconds(f.name) if f.name in WINDOW_FAULTS else getattr(self, f.name)
                for f in fields(self) if not f.name.startswith("_")}

    def copy(self) -> "Faults":
        return Faults(**self.as_dict())

    @staticmethod
    def describe() -> dict:
        return {**CHANCE_FAULTS, **SECONDS_FAULTS}
