"""What Luma says about generations, parsed tolerantly: every field optional, unknown fields kept in `raw`.

Luma's docs and SDKs disagree on names (`generation_type` or `type`, `model` or `version`), so both are read.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

_ISO_START = re.compile(r"^\d{4}-\d{2}-\d{2}")
_FRACTION = re.compile(r"\.(\d+)")


def parse_datetime(value: Any) -> datetime | None:
    """An aware datetime from Luma's created_at (ISO 8601 with Z or an offset, 0-9 fraction digits, or
    epoch seconds); a naive time is taken as UTC, and anything unreadable gives None rather than an error."""
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000 if value > 1e11 else value  # milliseconds from a JavaScript-minded server
        try:
            return datetime.fromtimestamp(seconds, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            return None
    if not isinstance(value, str):
        return None
    text = value.strip()
    if not _ISO_START.match(text):
        return None
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    # fromisoformat accepts at most 6 fraction digits on some Pythons: cut nanoseconds down to microseconds.
    text = _FRACTION.sub(lambda m: "." + m.group(1)[:6], text, count=1)
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


def _text(value: Any) -> str | None:
    """A non-empty string, or None (numbers are accepted as ids; anything else is not text)."""
    if isinstance(value, str):
        return value or None
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, (float, str)):
        try:
            return int(value)
        except (ValueError, OverflowError):
            return None
    return None


@dataclass(frozen=True, slots=True)
class Generation:
    """One generation as Luma reports it (GET /generations/{id}, a create's answer, a list item or a callback)."""

    id: str | None = None
    state: str | None = None  # queued | dreaming | completed | failed, lowercased; anything else is passed on
    failure_reason: str | None = None
    created_at: datetime | None = None
    kind: str | None = None  # Luma's generation_type (or type): "video" or "image"
    model: str | None = None
    video_url: str | None = None
    image_url: str | None = None
    progress_video_url: str | None = None
    request: dict = field(default_factory=dict)
    callback_url: str | None = None
    raw: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any) -> Generation:
        """Build from whatever JSON Luma sent; a body that is not an object gives an empty Generation."""
        if not isinstance(data, dict):
            return cls()
        assets = data.get("assets")
        assets = assets if isinstance(assets, dict) else {}
        request = data.get("request")
        request = request if isinstance(request, dict) else {}
        state = _text(data.get("state"))
        return cls(
            id=_text(data.get("id")),
            state=state.strip().lower() if state else None,
            failure_reason=_text(data.get("failure_reason")),
            created_at=parse_datetime(data.get("created_at")),
            kind=_text(data.get("generation_type")) or _text(data.get("type")),
            model=_text(data.get("model")) or _text(data.get("version")),
            video_url=_text(assets.get("video")),
            image_url=_text(assets.get("image")),
            progress_video_url=_text(assets.get("progress_video")),
            request=request,
            callback_url=_text(request.get("callback_url")) or _text(data.get("callback_url")),
            raw=data,
        )

    @property
    def is_terminal(self) -> bool:
        return self.state in ("completed", "failed")


@dataclass(frozen=True, slots=True)
class GenerationPage:
    """One page of GET /generations. `count` is the size of this page, not a total (SDK docs)."""

    generations: list[Generation] = field(default_factory=list)
    count: int = 0
    has_more: bool = False
    limit: int | None = None
    offset: int | None = None
    raw: dict = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: Any, *, limit: int | None = None, offset: int | None = None) -> GenerationPage:
        """Build from Luma's answer; limit/offset are what was asked, used when the answer does not echo them."""
        if isinstance(data, list):  # a bare array: tolerate it as the generations themselves
            data = {"generations": data}
        if not isinstance(data, dict):
            data = {}
        items = data.get("generations")
        generations = [Generation.from_json(item) for item in items if isinstance(item, dict)] if isinstance(
            items, list) else []
        echoed_limit = _int(data.get("limit"))
        limit = echoed_limit if echoed_limit is not None else limit
        echoed_offset = _int(data.get("offset"))
        offset = echoed_offset if echoed_offset is not None else offset
        count = _int(data.get("count"))
        has_more = data.get("has_more")
        if not isinstance(has_more, bool):
            # Not said: a full page may well be followed by another one, so callers keep paging.
            has_more = bool(limit) and len(generations) >= limit
        return cls(
            generations=generations,
            count=count if count is not None else len(generations),
            has_more=has_more,
            limit=limit,
            offset=offset,
            raw=data,
        )
