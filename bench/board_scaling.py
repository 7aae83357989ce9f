"""A board page with 10,000 generations on it against one with 100, side by side in one run (issue 10).

    .venv/bin/python bench/board_scaling.py [--rounds 30] [--library 20000]

In one process, through Django's test client (middleware, session, templates, gzip as a browser asks; no network),
one SQLite database: a team library of --library generations (newest first: a few in flight, mostly finished, some
failed, some picked), a board "Small" holding 100 of them and a board "Big" holding 10,000, each spread evenly over
the whole library (so neither board's first page is simply the library's). Each round requests every board page
once for each board, alternating which board goes first: the full page, the htmx results for a prompt search, for
Done, for Picked, for Picked+Done, and an older page. Printed: median server time per page and board, the Big/Small
ratio (goal <= 1.3) and the SQL queries per page at both sizes (goal: the same; counted with an empty ETA cache).
The cost total is a request of its own (the page asks for it once the cards are in): timed and counted apart.

Evidence printed first: the rows on each board, and for each scenario the cards the page shows compared with the
same question asked of the database directly (a plain filter over BoardItem, no Exists), and the cost total compared
with the sum of pricing.estimate_cents over every finished row on the board.
"""

import argparse
import gc
import os
import re
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = {"Small": 100, "Big": 10_000}
WORDS = "fox snow dawn river neon city rain forest desert ocean glass robot dancer lantern mountain storm".split()


def setup_django(workdir: Path) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="lumaweb.settings", LUMAWEB_VAR_DIR=str(workdir), MEDIA_ROOT=str(workdir / "media"),
        DATABASE_URL=f"sqlite:///{workdir / 'bench.sqlite3'}", DEBUG="0", LOG_LEVEL="WARNING",
        LUMAAI_BASE_URL="http://127.0.0.1:9/dream-machine/v1", LUMAAI_API_KEY="bench-key",
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)


def fill(library: int) -> dict:
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone

    from generations import pricing
    from generations.models import Board, BoardItem, Generation, Kind, LumaAccount, State

    now = timezone.now()
    with transaction.atomic():
        users = [get_user_model().objects.create(username=n, password="!") for n in ("alice", "bob", "carol", "dan")]
        LumaAccount.objects.create(pk=1, credit_balance=184250.0, credits_checked_at=now)
        rows = []
        for i in reversed(range(library)):  # oldest first: primary keys grow with created_at
            created = now - timedelta(minutes=2 * i + 1)
            words = " ".join(WORDS[(i * 5 + k * 3) % len(WORDS)] for k in range(4))
            state = State.COMPLETED
            if i < 4:
                state = (State.PENDING, State.QUEUED, State.DREAMING, State.QUEUED)[i]
            elif i % 13 == 0:
                state = State.FAILED
            rows.append(Generation(
                owner=users[i % len(users)], kind=Kind.TEXT_TO_VIDEO if i % 5 else Kind.IMAGE,
                prompt=f"A {words} scene, take {i}" + (" aurora" if i < 12 or i % 400 == 200 else ""),
                model="photon-1" if i % 5 == 0 else ("ray-2", "ray-flash-2")[i % 2],
                resolution=("540p", "720p", "1080p")[i % 3], duration=("5s", "9s")[i % 2], aspect_ratio="16:9",
                created_at=created, created_day=timezone.localdate(created),
                submitted_at=created + timedelta(seconds=2), state=state,
                completed_at=created + timedelta(seconds=50) if state == State.COMPLETED else None,
                luma_id=None if state == State.PENDING else f"luma-{i}", client_token=f"t{i}",
                review_mark="picked" if i % 7 == 1 else ("rejected" if i % 11 == 2 else ""),
            ))
            row = rows[-1]
            row.price_cents = pricing.estimate_cents(row.kind, row.model, row.resolution, row.duration)
        Generation.objects.bulk_create(rows, batch_size=2000)
        pks = list(Generation.objects.order_by("-created_at").values_list("pk", flat=True))
        boards = {}
        for name, size in SIZES.items():
            board = Board.objects.create(name=name, owner=users[0], shared=True)
            # The newest 12 on both (their first pages alike: the same live cards), the rest spread evenly.
            step = (len(pks) - 12) / (size - 12)
            chosen = pks[:12] + [pks[12 + int(k * step)] for k in range(size - 12)]
            BoardItem.objects.bulk_create(
                [BoardItem(board=board, generation_id=pk, added_by=users[0]) for pk in chosen], batch_size=2000)
            boards[name] = board
    return {"user": users[0], "boards": boards, "pks": pks}


def scenarios(facts: dict, name: str) -> list[tuple[str, dict, bool]]:
    """(label, query, htmx) for one board; the older page starts below the board's 40th newest row."""
    from generations.models import BoardItem

    on = list(BoardItem.objects.filter(board=facts["boards"][name]).order_by("-generation__created_at")
              .values_list("generation_id", flat=True)[:40])
    return [
        ("full page", {}, False),
        ("search 'aurora'", {"q": "aurora"}, True),
        ("Done", {"state": "completed"}, True),
        ("Picked", {"review": "picked"}, True),
        ("Picked + Done", {"review": "picked", "state": "completed"}, True),
        ("older page", {"before": on[-1]}, True),
        ("cost", {"cost": "1"}, True),
        ("cost, Done", {"cost": "1", "state": "completed"}, True),
    ]


def expected(board, query: dict) -> tuple[list[int], int]:
    """The first page's primary keys and the cost total (cents), asked of the database without the app's query."""
    from generations import pricing
    from generations.models import BoardItem, Generation, State

    ids = BoardItem.objects.filter(board=board).values_list("generation_id", flat=True)
    rows = Generation.objects.filter(pk__in=list(ids), deleted_at__isnull=True)
    if query.get("q"):
        rows = rows.filter(prompt__icontains=query["q"])
    if query.get("state") == "completed":
        rows = rows.filter(state=State.COMPLETED)
    if query.get("review"):
        rows = rows.filter(review_mark=query["review"])
    if query.get("before"):
        older = Generation.objects.get(pk=query["before"])
        rows = [r for r in rows.order_by("-created_at", "-id") if (r.created_at, r.pk) < (older.created_at, older.pk)]
    else:
        rows = list(rows.order_by("-created_at", "-id"))
    cost = sum(pricing.estimate_cents(r.kind, r.model, r.resolution, r.duration)
               for r in rows if r.state == State.COMPLETED)
    return [r.pk for r in rows[:12]], cost


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--library", type=int, default=20_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="lumaweb-boards-") as workdir:
        setup_django(Path(workdir))
        run(args)


def run(args) -> None:
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from generations import models as generation_models

    started = time.perf_counter()
    facts = fill(args.library)
    print(f"library: {len(facts['pks']):,} generations, filled in {time.perf_counter() - started:.1f} s (SQLite)")
    client = Client(HTTP_HOST="127.0.0.1", HTTP_ACCEPT_ENCODING="gzip, deflate, br")
    client.force_login(facts["user"])

    def get(name: str, query: dict, htmx: bool):
        headers = {"HX-Request": "true"} if htmx else {}
        return client.get(facts["boards"][name].get_absolute_url(), query, headers=headers)

    # Evidence: each page shows what the database holds, and the cost is every finished row's price.
    plans = {name: scenarios(facts, name) for name in SIZES}
    print("\nevidence (cards shown vs a direct query; cost vs the sum of each finished row's price):")
    for name, board in facts["boards"].items():
        print(f"  board {name}: {board.items.count():,} generations on it")
        for label, query, htmx in plans[name]:
            response = get(name, query, htmx)
            assert response.status_code == 200, (name, label, response.status_code)
            html = (__import__("gzip").decompress(response.content) if response.get("Content-Encoding") == "gzip"
                    else response.content).decode()
            shown = [int(pk) for pk in re.findall(r'<article id="card-(\d+)"', html)]
            pks, cents = expected(board, {k: v for k, v in query.items() if k != "cost"})
            if "cost" in query:  # the cost's own request: no cards, the total
                cost = re.search(r"Cost \(estimate\) of [^:]*: <strong>\$([\d,.]+)</strong>", html)
                ok = bool(cost) and round(float(cost.group(1).replace(",", "")) * 100) == cents
                print(f"    {label:16} {cost.group(1) if cost else '?':>10} {'ok' if ok else 'MISMATCH'}")
                assert ok, (name, label, cost, cents)
                continue
            print(f"    {label:16} {len(shown):2} cards {'ok' if shown == pks else 'MISMATCH'}")
            assert shown == pks, (name, label, shown, pks)

    # Queries per page, with an empty ETA cache (the most a page makes).
    queries = {}
    for name in SIZES:
        for label, query, htmx in plans[name]:
            generation_models._duration_cache.clear()
            with CaptureQueriesContext(connection) as captured:
                get(name, query, htmx)
            queries[name, label] = len(captured.captured_queries)

    times = {(name, label): [] for name in SIZES for label, _, _ in plans["Small"]}
    gc.disable()
    try:
        for round_ in range(args.rounds):
            order = list(SIZES) if round_ % 2 == 0 else list(reversed(SIZES))
            for index in range(len(plans["Small"])):
                for name in order:
                    label, query, htmx = plans[name][index]
                    began = time.perf_counter()
                    get(name, query, htmx)
                    times[name, label].append(time.perf_counter() - began)
            gc.collect()
    finally:
        gc.enable()

    print(f"\nmedian server time over {args.rounds} rounds (ms), Big (10,000 on the board) / Small (100):")
    print(f"  {'page':16} {'Small':>8} {'Big':>8} {'ratio':>6}  queries Small/Big")
    worst = 0.0
    for label, query, _ in plans["Small"]:
        small = statistics.median(times["Small", label]) * 1000
        big = statistics.median(times["Big", label]) * 1000
        if "cost" not in query:
            worst = max(worst, big / small)
        print(f"  {label:16} {small:8.2f} {big:8.2f} {big / small:6.2f}  {queries['Small', label]}/{queries['Big', label]}")
    same = all(queries["Small", label] == queries["Big", label] for label, _, _ in plans["Small"])
    print(f"\nworst page ratio {worst:.2f} (goal <= 1.3; the cost's own request not included): "
          f"{'met' if worst <= 1.3 else 'NOT met'}; "
          f"queries the same at both sizes: {'yes' if same else 'NO'}")


if __name__ == "__main__":
    main()
