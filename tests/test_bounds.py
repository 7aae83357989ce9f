"""Reads that stay bounded however much history piles up: events on the detail page, lineage, queue places."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from generations.models import Generation, GenerationEvent, Kind, State

pytestmark = pytest.mark.django_db


def test_the_detail_page_shows_the_newest_events_and_counts_the_rest(alice_client, alice):
    row = Generation.objects.create(owner=alice, kind=Kind.TEXT_TO_VIDEO, prompt="busy", state=State.QUEUED)
    GenerationEvent.objects.bulk_create(
        GenerationEvent(generation=row, source="poll", state=State.QUEUED, summary=f"event number {i}")
        for i in range(1000)
    )

    page = alice_client.get(f"/generations/{row.pk}/").content.decode()

    assert "event number 999" in page and "event number 900" in page
    assert "event number 899" not in page
    assert "900 earlier events not shown" in page


def test_a_long_lineage_costs_one_query_per_level_not_per_ancestor(alice_client, alice):
    # A binary tree of interpolations, four levels deep: 15 ancestors.
    level = [Generation.objects.create(owner=alice, prompt=f"root {i}", state=State.COMPLETED) for i in range(8)]
    while len(level) > 1:
        level = [
            Generation.objects.create(owner=alice, kind=Kind.INTERPOLATE, prompt="joined", state=State.COMPLETED,
                                      frame0_generation=a, frame1_generation=b)
            for a, b in zip(level[::2], level[1::2])
        ]
    top = level[0]

    with CaptureQueriesContext(connection) as queries:
        page = alice_client.get(f"/generations/{top.pk}/").content.decode()

    assert all(f"root {i}" in page for i in range(8))
    lineage_reads = [q for q in queries.captured_queries if "IN (" in q["sql"] and "generations_generation" in q["sql"]]
    assert len(lineage_reads) <= 6, len(lineage_reads)
