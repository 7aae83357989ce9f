"""A trigram index for prompt search on PostgreSQL, so a search that matches little does not read every row.

The library searches with `prompt__icontains`, which PostgreSQL runs as UPPER(prompt) LIKE UPPER('%words%'):
a GIN trigram index on that same expression answers it. SQLite has no such index; this does nothing there.
"""

import logging

from django.db import DatabaseError, migrations, transaction

INDEX = "generations_prompt_trgm_idx"


def create(apps, schema_editor):
    if schema_editor.connection.vendor != "postgresql":
        return
    try:
        with transaction.atomic(using=schema_editor.connection.alias):
            schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    except DatabaseError as error:
        # pg_trgm is a trusted extension (any database owner may add it since PostgreSQL 13), but a managed
        # server may still refuse: search then works as before, only slower on a big library.
        logging.getLogger("lumaweb").warning("No trigram index for prompt search: %s", error)
        return
    schema_editor.execute(
        f"CREATE INDEX IF NOT EXISTS {INDEX} ON generations_generation USING gin (UPPER(prompt) gin_trgm_ops)"
    )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("generations", "0004_library_filter_indexes")]

    operations = [migrations.RunPython(create, drop)]
