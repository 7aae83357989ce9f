"""Prompt search for the library and the source pickers: the rows `prompt__icontains` finds, at any library size.

`matching(rows, text)` narrows any Generation queryset (its filters and ordering stay as they are) to the rows
whose prompt contains `text`, case-insensitively, exactly as `prompt__icontains` does; it only chooses how the
database finds them, so that a page of the newest matches costs about the same with 100 rows as with 100,000:

- On SQLite (3.34 or newer, which has FTS5's trigram tokenizer) an FTS5 index of every prompt
  (`generations_prompt_fts`, kept in step by triggers; migration 0009) answers a search of 3 or more characters.
  One small query first counts its matches, stopping past PROBE_LIMIT. None: no page query at all. A few: they
  are all the rows that can match, and the page is looked up by their `created_at` through the library's own
  indexes, so a search that matches little or nothing never reads the whole library. More: the word is common,
  and walking the library newest first finds a page of matches within the first few thousand rows at most, as
  it always did.
  Either way the prompt is then checked with `icontains` itself, so the results are icontains' results (FTS5 folds
  case for every letter, SQLite's LIKE only for ASCII: the index finds a superset, LIKE keeps what it always kept).
- On PostgreSQL `icontains` is already served by the pg_trgm index of migration 0005, and the planner has
  statistics to choose between it and the library's ordered index; nothing more is done there.
- A search of 1 or 2 characters has no trigram to look up, on either database: it looks through the newest
  SHORT_WINDOW visible generations only, so it stays bounded however big the library grows.
"""

from __future__ import annotations

import functools
import sqlite3
from contextlib import closing
from datetime import datetime, timezone

from django.db import DatabaseError, connections
from django.db.models.signals import post_migrate
from django.db.models import QuerySet, Subquery, Value
from django.db.models.expressions import RawSQL
from django.db.models.functions import Coalesce

FTS_TABLE = "generations_prompt_fts"
# More matches than this and a search is "common": the newest-first walk finds a page of them quickly. Measured at
# 100,000 rows (bench/library_scaling.py): a match looked up by date costs about 7 us, a row walked about 0.5 us, so
# the worst case either side (every match looked up; a walk of 13 x rows / PROBE_LIMIT) is about equal near 300;
# 500 keeps a picker with a narrow filter (images: 1 row in 6) from walking far on a word just over the limit.
PROBE_LIMIT = 500
# A 1 or 2 character search looks through this many of the newest visible generations (about 1 ms on SQLite).
SHORT_WINDOW = 1000
MIN_TRIGRAM = 3

# Kept in step with generations_generation by triggers (an "external content" FTS5 table holds only the index).
TRIGGERS = {
    f"{FTS_TABLE}_insert": f"""
        CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_insert AFTER INSERT ON generations_generation BEGIN
            INSERT INTO {FTS_TABLE}(rowid, prompt) VALUES (new.id, new.prompt);
        END""",
    f"{FTS_TABLE}_delete": f"""
        CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_delete AFTER DELETE ON generations_generation BEGIN
            INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, prompt) VALUES ('delete', old.id, old.prompt);
        END""",
    # Every save() writes every column: only a changed prompt (or id) touches the index.
    f"{FTS_TABLE}_update": f"""
        CREATE TRIGGER IF NOT EXISTS {FTS_TABLE}_update AFTER UPDATE OF id, prompt ON generations_generation
        WHEN old.prompt IS NOT new.prompt OR old.id IS NOT new.id BEGIN
            INSERT INTO {FTS_TABLE}({FTS_TABLE}, rowid, prompt) VALUES ('delete', old.id, old.prompt);
            INSERT INTO {FTS_TABLE}(rowid, prompt) VALUES (new.id, new.prompt);
        END""",
}


@functools.cache
def sqlite_has_trigram_fts() -> bool:
    """Whether this process's SQLite (the one Django uses) has FTS5 with the trigram tokenizer (3.34+)."""
    try:
        with closing(sqlite3.connect(":memory:")) as db:
            db.execute("CREATE VIRTUAL TABLE probe USING fts5(x, tokenize='trigram')")
    except sqlite3.Error:
        return False
    return True


def ensure_sqlite_index(connection) -> bool:
    """Create the FTS5 table and its triggers where missing; fill the index whenever anything was missing.

    Called by migration 0009 and after every `migrate`: Django rebuilds a SQLite table to alter it (a new table
    copied, the old one dropped, which drops its triggers), so a later migration of Generation would otherwise
    leave an index that no longer follows the prompts. Returns whether the index was (re)built.
    """
    if connection.vendor != "sqlite" or not sqlite_has_trigram_fts():
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'trigger') AND name LIKE %s",
                       [f"{FTS_TABLE}%"])
        present = {name for (name,) in cursor.fetchall()}
        if "generations_generation" not in connection.introspection.table_names(cursor):
            return False
        if FTS_TABLE in present and TRIGGERS.keys() <= present:
            return False
        if FTS_TABLE not in present:
            cursor.execute(f"CREATE VIRTUAL TABLE {FTS_TABLE} USING fts5(prompt, content='generations_generation', "
                           f"content_rowid='id', tokenize='trigram')")
        for sql in TRIGGERS.values():
            cursor.execute(sql)
        # Reads every prompt from generations_generation again: the rows that already exist (backfill) and any
        # change made while a trigger was missing.
        cursor.execute(f"INSERT INTO {FTS_TABLE}({FTS_TABLE}) VALUES ('rebuild')")
    return True


def drop_sqlite_index(connection) -> None:
    if connection.vendor != "sqlite":
        return
    with connection.cursor() as cursor:
        for name in TRIGGERS:
            cursor.execute(f"DROP TRIGGER IF EXISTS {name}")
        cursor.execute(f"DROP TABLE IF EXISTS {FTS_TABLE}")


def matching(rows: QuerySet, text: str, probe_limit: int | None = None) -> QuerySet:
    """`rows` whose prompt contains `text` (case-insensitive, as icontains), newest-first pages cheap at any size.

    A search of 3+ characters on SQLite costs one small extra query (the index probe) when this is called, and
    none for the page when nothing matches; everything else stays lazy. `rows` keeps its filters, ordering and
    annotations. `probe_limit` (default PROBE_LIMIT): up to how many matches they are looked up by date rather
    than found by walking `rows` newest first; narrow `rows` (a picker's one kind of media) walk further for each
    match, so they are better served by a higher limit.
    """
    text = text.strip()
    if not text:
        return rows
    if len(text) < MIN_TRIGRAM:
        return recent(rows).filter(prompt__icontains=text)
    connection = connections[rows.db]
    if connection.vendor == "sqlite" and sqlite_has_trigram_fts():
        few = _few_matches(connection, rows.model, text, probe_limit or PROBE_LIMIT)
        if few == 0:
            return rows.none()
        if few is not None:
            # All the rows that can match, few: found through the library's indexes by their date. Matching
            # on created_at rather than on the primary key matters on SQLite, which keeps no statistics: with
            # `id IN (...)` it walks the library index (deleted_at, -created_at) and checks every row instead.
            rows = rows.filter(created_at__in=few)
    return rows.filter(prompt__icontains=text)


def _few_matches(connection, model, text: str, limit: int) -> RawSQL | int | None:
    """The creation dates of every row the FTS5 index finds for `text` (a subquery), 0 when there is none,
    or None when there are more than `limit`. Costs one query: a count that stops at limit + 1."""
    phrase = '"' + text.replace('"', '""') + '"'  # one FTS5 phrase: consecutive trigrams, i.e. a substring
    found = f"SELECT rowid FROM {FTS_TABLE} WHERE {FTS_TABLE} MATCH %s"
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM ({found} LIMIT %s)", [phrase, limit + 1])
            count = cursor.fetchone()[0]
    except DatabaseError:  # no index in this database (migrated where SQLite had no trigram tokenizer)
        return None
    if count > limit or count == 0:
        return None if count else 0
    table = model._meta.db_table
    return RawSQL(f"SELECT found.created_at FROM {table} found WHERE found.id IN ({found})", [phrase])


def recent(rows: QuerySet) -> QuerySet:
    """`rows` among the newest SHORT_WINDOW visible generations (a bounded walk along the library's indexes)."""
    model = rows.model
    cutoff = model.objects.filter(deleted_at__isnull=True).order_by("-created_at").values("created_at")
    oldest = datetime(1970, 1, 1, tzinfo=timezone.utc)
    return rows.filter(created_at__gte=Coalesce(Subquery(cutoff[SHORT_WINDOW - 1:SHORT_WINDOW]), Value(oldest)))


def repair_after_migrate(sender, using: str = "default", **kwargs) -> None:
    """post_migrate: put back the triggers a rebuilt generations_generation table lost (see ensure_sqlite_index)."""
    ensure_sqlite_index(connections[using])


post_migrate.connect(repair_after_migrate, dispatch_uid="generations.search.repair_after_migrate")
