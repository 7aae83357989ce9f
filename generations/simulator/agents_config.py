"""Settings and faults of the simulator's Agents API, changed at runtime through /_sim/agents/config and
/_sim/agents/faults (a chance fault takes a probability or, as an integer N >= 1, "the next N times", as faults.py).
"""

import random
from dataclasses import dataclass, field, fields

from .faults import parse_chance, parse_seconds
from .loopback import INPUT_TIMEOUT

CHANCE_FAULTS = {
    "lost_creates": "a create is accepted (job made, RPM and slot used), then the connection closes unanswered",
    "create_5xx_after_accept": "a create is accepted, then answers 502 (the SDK retries it: a duplicate)",
    "rpm_429": "a valid create answers 429 'Rate limit exceeded' with X-RateLimit-* and Retry-After",
    "concurrent_429": "a valid create answers 429 'Too many concurrent jobs' with Retry-After: 60",
    "get_5xx": "GET /generations/{id} answers 500/502/503",
    "cut_downloads": "an output download sends its headers, then half the bytes, then closes",
    "expired_downloads": "an output download answers 403 'Request has expired' whatever its URL says",
    "url_ingestion_down": "a create with a url reference answers 503 'Image URL ingestion unavailable'",
}
SECONDS_FAULTS = {
    "expire_output_urls": "output URLs expire this many seconds after the GET that signed them (not 3600)",
    "slow_responses": "every Agents API answer waits this long",
}


@dataclass
class AgentsConfig:
    queued_seconds: float = 6.0  # at the tests' time scale 0.05: 0.3 s queued,
    image_seconds: float = 20.0  # 1 s processing for images,
    video_seconds: float = 50.0  # 2.5 s for a 5 s 720p SDR video (10 s, 1080p and HDR each add a fifth)
    file_ingest_seconds: float = 4.0
    jitter: float = 0.15
    limits: bool = True
    requests_per_minute: int = 30
    concurrent_jobs: int = 10
    output_url_seconds: float = 3600.0
    upload_url_seconds: float = 3600.0
    remote_refs: str = "accept"  # non-loopback reference URLs are never fetched: accept | fail
    fetch_timeout: float = INPUT_TIMEOUT
    failure_rate: float = 0.0  # share of generations failing with generation_failed
    inline_upload_bytes: int = 20 * 1024 * 1024
    api_keys: list = field(default_factory=list)  # empty: any "luma-api-..." key is valid

    def copy(self) -> "AgentsConfig":
        return AgentsConfig(**{**self.as_dict(), "api_keys": list(self.api_keys)})

    def as_dict(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    def update(self, changes: dict) -> None:
        known = {f.name: type(f.default) if f.default is not None else float for f in fields(self)}
        known["api_keys"] = list
        parsed = {}
        for name, value in changes.items():
            if name not in known:
                raise ValueError(f"{name}: unknown setting (known: {', '.join(sorted(known))})")
            kind = known[name]
            if kind is bool and not isinstance(value, bool):
                raise ValueError(f"{name}: expected true or false")
            if kind is list and not (isinstance(value, list) and all(isinstance(v, str) and v for v in value)):
                raise ValueError(f"{name}: expected a list of non-empty strings")
            if kind is str and value not in ("accept", "fail"):
                raise ValueError(f"{name}: expected 'accept' or 'fail'")
            if kind in (int, float):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
                    raise ValueError(f"{name}: expected a non-negative number")
                if name == "failure_rate" and value > 1:
                    raise ValueError(f"{name}: must be between 0 and 1")
                value = kind(value)
            parsed[name] = value
        for name, value in parsed.items():
            setattr(self, name, value)


@dataclass
class AgentsFaults:
    values: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.values = {**{n: 0 for n in CHANCE_FAULTS}, **{n: 0.0 for n in SECONDS_FAULTS}, **self.values}

    def update(self, changes: dict) -> None:
        parsed = {}
        for name, value in changes.items():
            try:
                if name in CHANCE_FAULTS:
                    parsed[name] = parse_chance(value)
                elif name in SECONDS_FAULTS:
                    parsed[name] = parse_seconds(value)
                else:
                    raise ValueError(f"unknown fault (known: {', '.join(sorted([*CHANCE_FAULTS, *SECONDS_FAULTS]))})")
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name}: {exc}") from None
        self.values.update(parsed)

    def fires(self, name: str, rng: random.Random) -> bool:
        value = self.values[name]
        if isinstance(value, int) and value >= 1:
            self.values[name] = value - 1
            return True
        return bool(value) and rng.random() < value

    def copy(self) -> "AgentsFaults":
        return AgentsFaults(dict(self.values))
