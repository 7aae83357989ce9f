"""Prompt search that scales on SQLite: an FTS5 trigram index of every prompt, kept in step by triggers.

See generations/search.py. The index is filled from the rows already there (a `rebuild`). Nothing is done on
PostgreSQL, where the pg_trgm index of migration 0005 serves the search, nor where SQLite is older than 3.34
(no trigram tokenizer): search then works as before, scanning.
"""

from django.db import migrations


def create(apps, schema_editor):
    from generations.search import ensure_sqlite_index

    ensure_sqlite_index(schema_editor.connection)


def drop(apps, schema_editor):
    from generations.search import drop_sqlite_index

    drop_sqlite_index(schema_editor.connection)


class Migration(migrations.Migration):
    """Prompt search that scales (filled in by the search work)."""

    dependencies = [("generations", "0008_uploaded_media")]

    operations = [migrations.RunPython(create, drop)]
