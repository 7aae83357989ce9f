"""Prompt search (generations/search.py): icontains' results, an index kept in step, a cost that does not grow."""

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from generations import search, sources
from generations.models import Generation, Kind, State
from generations.search import matching

HTMX = {"HX-Request": "true"}
PROMPTS = [
    "A red Fox in the snow at dawn", "a FOX jumps", "foxglove meadow", "neon city rain", "50% off_sale",
    'She said "hi" twice', "Crème brûlée on a table", "CRÈME fraîche", "take 12 of 40", "take 120", "",
    "tab\tseparated words", "fox",
]
QUERIES = ["fox", "Fox", "FOX", "ox in", "x in the", "foxglove meadow", "rain", "50%", "f_s", "off_", '"hi"',
           "crème", "CRÈME", "rème", "take 12", "take 1", "zebra", "a", "ox", "%", "_", "t\ts", "  fox  ", "é"]


def make(prompts, owner=None, **fields):
    now = timezone.now()
    return Generation.objects.bulk_create(
        Generation(owner=owner, prompt=prompt, state=State.COMPLETED, created_at=now - timedelta(seconds=i), **fields)
        for i, prompt in enumerate(prompts)
    )


def found(rows, text):
    return sorted(matching(rows, text).values_list("pk", flat=True))


def contains(rows, text):
    return sorted(rows.filter(prompt__icontains=text.strip()).values_list("pk", flat=True))


@pytest.mark.django_db
def test_a_search_finds_exactly_what_icontains_finds():
    make(PROMPTS)
    make(["a fox that was deleted"], deleted_at=timezone.now())
    rows = Generation.objects.visible()
    for text in QUERIES:
        assert found(rows, text) == contains(rows, text), text
    assert found(rows, "fox") and not found(rows, "zebra")
    assert "a fox that was deleted" not in {g.prompt for g in matching(rows, "fox")}


@pytest.mark.django_db
def test_other_filters_and_newest_first_still_apply(alice, bob):
    make([f"lantern {i}" for i in range(30)], owner=alice)
    make([f"lantern {i}" for i in range(30, 40)], owner=bob, kind=Kind.IMAGE)
    rows = Generation.objects.visible().filter(owner=alice)
    page = list(matching(rows, "lantern 1")[:5])
    assert [g.prompt for g in page] == ["lantern 1", "lantern 10", "lantern 11", "lantern 12", "lantern 13"]
    assert all(g.owner == alice for g in page)
    images = matching(Generation.objects.filter(kind=Kind.IMAGE), "lantern")
    assert [g.prompt for g in images] == [f"lantern {i}" for i in range(30, 40)]


@pytest.mark.django_db
def test_the_index_follows_every_insert_update_and_delete():
    first, second = make(["a quiet harbour at night", "a storm over the harbour"])
    rows = Generation.objects.all()
    assert found(rows, "harbour") == sorted([first.pk, second.pk])
    first.prompt = "a lighthouse alone"
    first.save()  # save() writes every column
    Generation.objects.filter(pk=second.pk).update(prompt="a lighthouse in a storm")  # no model save
    third = Generation.objects.create(prompt="harbour lights")
    assert found(rows, "harbour") == [third.pk]
    assert found(rows, "lighthouse") == sorted([first.pk, second.pk])
    first.state = State.FAILED
    first.save()  # the prompt unchanged: still found once
    assert found(rows, "lighthouse") == sorted([first.pk, second.pk])
    second.delete()
    Generation.objects.filter(pk=third.pk).delete()
    assert found(rows, "lighthouse") == [first.pk]
    assert found(rows, "harbour") == []
    # A new row may reuse a deleted row's id on SQLite: it is found by its own prompt only.
    again = Generation.objects.create(prompt="a cat on a roof")
    assert found(rows, "cat on") == [again.pk] and found(rows, "storm") == []


@pytest.mark.django_db
def test_a_short_search_looks_through_the_newest_generations_only(monkeypatch):
    monkeypatch.setattr(search, "SHORT_WINDOW", 5)
    make([f"clip {i} {'ok' if i in (1, 7) else ''}" for i in range(10)])
    rows = Generation.objects.visible()
    assert [g.prompt for g in matching(rows, "ok")] == ["clip 1 ok"]  # "clip 7 ok" is the 8th newest
    assert [g.prompt for g in matching(rows, "clip 7")] == ["clip 7 ok"]  # 3+ characters: the whole library
    # With fewer rows than the window, a short search sees them all.
    Generation.objects.filter(prompt__startswith="clip ").exclude(prompt__contains="ok").delete()
    assert [g.prompt for g in matching(rows, "ok")] == ["clip 1 ok", "clip 7 ok"]


@pytest.mark.django_db
def test_a_common_word_and_a_rare_one_give_the_same_first_page_as_icontains(monkeypatch):
    monkeypatch.setattr(search, "PROBE_LIMIT", 20)  # both sides of the probe's limit with few rows
    make([f"{'comet' if i % 2 else 'storm'} take {i}" for i in range(60)])
    rows = Generation.objects.visible()
    for text in ("comet", "storm take 1", "take 5", "take 59", "comet take 58", "nothing"):
        ours = [g.pk for g in matching(rows, text)[:13]]
        plain = [g.pk for g in rows.filter(prompt__icontains=text)[:13]]
        assert ours == plain, text


@pytest.mark.django_db
def test_the_library_page_search_shows_matching_cards_newest_first(alice_client):
    make(["a comet over the sea", "a quiet field", "Comet tails"])
    response = alice_client.get("/library/", {"q": "COMET"}, headers=HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert body.index("a comet over the sea") < body.index("Comet tails")
    assert "a quiet field" not in body
    nothing = alice_client.get("/library/", {"q": "zebra"}, headers=HTMX).content.decode()
    assert "a comet over the sea" not in nothing and "Comet tails" not in nothing


def sqlite_steps(client, query, path="/library/") -> int:
    """SQLite virtual machine steps (x100) a page costs (the library's by default): work that grows with rows read."""
    steps = 0

    def count():
        nonlocal steps
        steps += 1
        return 0

    connection.ensure_connection()
    connection.connection.set_progress_handler(count, 100)
    try:
        assert client.get(path, query, headers=HTMX).status_code == 200
    finally:
        connection.connection.set_progress_handler(None, 100)
    return steps


@pytest.mark.django_db
@pytest.mark.skipif("connection.vendor != 'sqlite'")
def test_a_search_costs_the_same_in_a_library_four_times_bigger(alice_client, monkeypatch):
    # The probe's limit is tuned for 100,000 rows (see search.PROBE_LIMIT); scaled here to this test's 10,000.
    monkeypatch.setattr(search, "PROBE_LIMIT", 100)
    words = "fox snow dawn river neon city rain forest desert ocean glass robot".split()

    def add(start, count):
        make([f"A {words[i % 12]} {words[(i * 5) % 12]} scene, take {start + i}" for i in range(count)])

    add(0, 2499)
    make(["a rare unicorn"])
    # Nothing, one row, a common word (1 in 12) with a filter, a short search.
    queries = [{"q": "zebra"}, {"q": "unicorn"}, {"q": "ocean", "state": "completed"}, {"q": "fo"}]
    small = [sqlite_steps(alice_client, q) for q in queries]
    add(2500, 7500)
    big = [sqlite_steps(alice_client, q) for q in queries]
    for query, a, b in zip(queries, small, big):
        # icontains alone read every prompt: 4x the steps for a search that matches nothing.
        assert b <= 1.3 * a + 5, (query, a, b)


@pytest.mark.django_db
@pytest.mark.skipif("connection.vendor != 'sqlite'")
def test_a_picker_search_finds_its_few_images_among_many_matches_at_the_same_cost_in_a_bigger_library(
        alice_client, monkeypatch):
    # Scaled from 100,000 rows to this test's 4,000: the library's limit and the pickers' own.
    monkeypatch.setattr(search, "PROBE_LIMIT", 20)
    monkeypatch.setattr(sources, "PICKER_PROBE_LIMIT", 100)
    now = timezone.now()

    def add(start, count):
        # "velvet" on 60 rows in all (between both limits), 5 of them finished images; the rest never match.
        Generation.objects.bulk_create(
            Generation(prompt=f"{'velvet' if i < 60 else 'plain'} scene, take {i}", state=State.COMPLETED,
                       kind=Kind.IMAGE if i % 12 == 0 else Kind.TEXT_TO_VIDEO, luma_id=f"luma-{i}",
                       model="photon-1" if i % 12 == 0 else "ray-2", created_at=now - timedelta(minutes=i))
            for i in range(start, start + count))

    add(0, 1000)
    query = {"accept": "image", "field": "source", "q": "velvet"}
    small = sqlite_steps(alice_client, query, path="/pick/")
    add(1000, 3000)
    big = sqlite_steps(alice_client, query, path="/pick/")
    assert big <= 1.3 * small + 5, (small, big)

    shown = [row.pk for row in sources.pick("image", "velvet")]
    plain = sources.finished("image").filter(prompt__icontains="velvet")
    assert shown == list(plain.values_list("pk", flat=True)) and len(shown) == 5
    body = alice_client.get("/pick/", query, headers=HTMX).content.decode()
    assert body.count("data-pick=") == 5


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif("connection.vendor != 'sqlite'")
def test_migration_0009_indexes_the_rows_already_there_and_the_index_survives_a_table_rebuild():
    executor = MigrationExecutor(connection)
    executor.migrate([("generations", "0008_uploaded_media")])
    try:
        with connection.cursor() as cursor:
            assert search.FTS_TABLE not in connection.introspection.table_names(cursor)
        # Rows as the table was then: the model of migration 0008, not today's (which has later columns).
        then = executor.loader.project_state(("generations", "0008_uploaded_media")).apps.get_model(
            "generations", "Generation")
        old = [then.objects.create(prompt=prompt, state=State.COMPLETED) for prompt in ("an old lantern",
                                                                                       "an older kite")]
    finally:
        MigrationExecutor(connection).migrate(MigrationExecutor(connection).loader.graph.leaf_nodes())
    rows = Generation.objects.all()
    assert found(rows, "lantern") == [old[0].pk]
    # Django alters a SQLite table by copying it into a new one and dropping the old (and its triggers);
    # `migrate` puts the triggers back and refills the index.
    with connection.schema_editor() as editor:
        editor._remake_table(Generation)
    Generation.objects.filter(pk=old[1].pk).update(prompt="a red kite")
    call_command("migrate", verbosity=0)
    newer = Generation.objects.create(prompt="a new lantern")
    assert found(rows, "lantern") == sorted([old[0].pk, newer.pk])
    assert found(rows, "red kite") == [old[1].pk]
