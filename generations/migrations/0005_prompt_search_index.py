"""A trigram index for prompt search on PostgreSQL, so a search that matches little does not read every row.

The library searches with `prompt__icontains`, which PostgreSQL runs as UPPER(prompt) LIKE UPPER('%words%'):
a GIN trigram index on that same expression answers it. SQLite has no such index; this does nothing there.
"""

from django.db import migrations

INDEX = "generations_prompt_trgm_idx"


def create(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        schema_editor.execute(
            f"CREATE INDEX IF NOT EXISTS {INDEX} ON generations_generation USING gin (UPPER(prompt) gin_trgm_ops)"
        )


def drop(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX IF EXISTS {INDEX}")


class Migration(migrations.Migration):
    dependencies = [("generations", "0004_library_filter_indexes")]

    operations = [migrations.RunPython(create, drop)]
