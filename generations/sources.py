"""Library generations a new one can start from: what each picker offers, its search, and a source's size.

A picker lists finished videos (extend, reverse extend, interpolate, modify, reframe video) or finished images
(keyframes, Photon references, reframe image), newest first, at a cost that does not grow with the library.
"""

from __future__ import annotations

from django.db.models import QuerySet

from .models import IMAGE_KINDS, Generation, State
from .search import matching  # the library's own prompt search, so both match the same way

# How many generations one picker page shows; a search narrows them down.
PICKER_SIZE = 24
# A picker's rows are one kind of media, finished: a search walking them newest first passes several library rows
# for each match, so matches are looked up by date up to this many (search.PROBE_LIMIT is the library's 500).
# Measured at 100,000 rows (bench/library_scaling.py): either side of it costs well under the 50 ms goal.
PICKER_PROBE_LIMIT = 2000
ACCEPTS = ("video", "image")


def finished(accept: str) -> QuerySet[Generation]:
    """Generations Luma can start something from: completed, not deleted, still known to Luma, of that media."""
    rows = Generation.objects.visible().filter(state=State.COMPLETED).exclude(luma_id__isnull=True).exclude(luma_id="")
    if accept == "image":
        return rows.filter(kind__in=IMAGE_KINDS)
    return rows.exclude(kind__in=IMAGE_KINDS)


def usable(row: Generation, accept: str) -> bool:
    return (row.state == State.COMPLETED and not row.deleted_at and bool(row.luma_id)
            and row.is_video == (accept == "video"))


def pick(accept: str, query: str = "", limit: int = PICKER_SIZE) -> list[Generation]:
    """The newest `limit` finished videos or images, those whose prompt contains `query` when given.

    Without a search it reads the newest rows along the library's index and keeps the usable ones: asked in SQL,
    the state filter makes SQLite (which keeps no statistics) use the state index and sort every finished row.
    Only when the newest rows hold too few does it ask in full.
    """
    fields = ("kind", "state", "luma_id", "deleted_at", "prompt", "aspect_ratio", "poster", "archive_state",
              "archive_file", "created_at")
    if query:
        # Searched among this picker's rows alone, through the prompt index (search.py): searching every visible
        # row and keeping the usable ones afterwards walks the whole library for a word on a few hundred rows
        # but few of this media (0.5 s at 100,000 rows).
        return list(matching(finished(accept), query, probe_limit=PICKER_PROBE_LIMIT).only(*fields)[:limit])
    rows = Generation.objects.visible()
    window = limit * 4
    newest = list(rows.only(*fields)[:window])
    found = [row for row in newest if usable(row, accept)][:limit]
    if len(found) < limit and len(newest) == window:  # mostly other kinds or failures lately: ask in full
        found = list(finished(accept).filter(pk__in=rows.values("pk")).only(*fields)[:limit])
    return found


def seconds_of(generation: Generation) -> float | None:
    """How long a library video is: Luma's duration ("5s", "9s") when the request said, else None."""
    text = (generation.duration or "").rstrip("s")
    try:
        return float(text)
    except ValueError:
        return None
