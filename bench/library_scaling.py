"""Library page server time and SQL queries with 10,000 generations, side by side with 100 (issue 4).

    .venv/bin/python bench/library_scaling.py [--rounds 30] [--analyze]
    .venv/bin/python bench/library_scaling.py --database postgres://postgres@127.0.0.1:5432/lumaweb_bench

In one process, through Django's test client (middleware, session, templates, gzip as a browser asks for it;
no network): two databases, one with 100 generations and one with 10,000, built from the same pattern so their
newest rows (the first page) are alike. Each round requests every page (the dashboard, the library partial with
each filter, an older page, the poll) once from each database, alternating which goes first; the script prints
median times, the 10,000/100 ratio (goal <= 1.3) and the SQL queries per page (goal: the same for both, <= 8;
counted with an empty ETA cache, the most a page ever makes). SQLite files live in a temporary folder; with
--database, PostgreSQL databases <name>_100 and <name>_10000 are created beside <name> and dropped afterwards.
--analyze runs ANALYZE on SQLite too (the app never does), to show what planner statistics would change.
"""

import argparse
import gc
import gzip
import os
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZES = (100, 10_000)
ALIASES = {100: "default", 10_000: "big"}
LIVE_ROWS = 6  # the newest rows are in flight, in both databases
WORDS = ("fox snow dawn river neon city rain forest desert ocean glass robot dancer lantern mountain storm "
         "garden train violin comet").split()


class Router:
    """Sends every query to the database under measurement."""

    alias = "default"

    def db_for_read(self, model, **hints):
        return Router.alias

    def db_for_write(self, model, **hints):
        return Router.alias


def postgres_urls(url: str) -> dict[int, str]:
    parts = urlsplit(url)
    base = parts.path.lstrip("/") or "lumaweb_bench"
    return {n: urlunsplit(parts._replace(path=f"/{base}_{n}")) for n in SIZES}


def recreate_postgres(urls: dict[int, str], drop_only: bool = False) -> None:
    import psycopg

    admin = urlunsplit(urlsplit(next(iter(urls.values())))._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        for url in urls.values():
            name = urlsplit(url).path.lstrip("/")
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            if not drop_only:
                conn.execute(f'CREATE DATABASE "{name}"')


def setup_django(workdir: Path, urls: dict[int, str]) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="lumaweb.settings",
        LUMAWEB_VAR_DIR=str(workdir),
        MEDIA_ROOT=str(workdir / "media"),
        DATABASE_URL=urls[SIZES[0]],
        DEBUG="0",
        LOG_LEVEL="WARNING",
        # Never called: the library reads only our database. A closed local port, in case.
        LUMA_BASE_URL="http://127.0.0.1:9/dream-machine/v1",
        LUMAAI_API_KEY="bench-key",
    )
    from django.conf import settings

    import dj_database_url
    import django
    from django.conf import settings

    default = settings.DATABASES["default"]  # loads lumaweb.settings, before any connection exists
    settings.DATABASES["big"] = {**default, "NAME": dj_database_url.parse(urls[SIZES[1]])["NAME"], "TEST": {}}
    settings.DATABASE_ROUTERS = [Router()]
    django.setup()
    from django.core.management import call_command

    # Pages link hashed static names, as in production.
    call_command("collectstatic", interactive=False, verbosity=0)


def fill(n: int, analyze: bool = False) -> dict:
    """n generations, newest first: a few in flight, mostly archived videos, some failures and images."""
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.db import connections, transaction
    from django.utils import timezone

    from generations.models import ArchiveState, Favourite, Generation, Kind, LumaAccount, State

    alias = ALIASES[n]
    Router.alias = alias
    call_command("migrate", database=alias, verbosity=0)
    User = get_user_model()
    now = timezone.now()
    with transaction.atomic(using=alias):
        users = [User.objects.create(username=name, password="!") for name in ("alice", "bob", "carol", "dan", "eve")]
        LumaAccount.objects.create(pk=1, credit_balance=184250.0, credits_checked_at=now)
        rows = []
        kinds = [Kind.TEXT_TO_VIDEO, Kind.IMAGE_TO_VIDEO, Kind.EXTEND, Kind.TEXT_TO_VIDEO, Kind.IMAGE, Kind.INTERPOLATE]
        models = ["ray-2", "ray-flash-2", "ray-2", "ray-1-6"]
        for i in reversed(range(n)):  # oldest first, so primary keys grow with created_at as in real use
            created = now - timedelta(minutes=3 * i + 1)
            kind = kinds[i % len(kinds)]
            words = [WORDS[(i * 7 + k * 3) % len(WORDS)] for k in range(4)]
            fields = dict(
                owner=users[i % len(users)], kind=kind, prompt=f"A {' '.join(words)} scene, take {i}",
                model="photon-1" if kind == Kind.IMAGE else models[i % len(models)], resolution="720p",
                duration="5s", aspect_ratio="16:9", created_at=created, client_token=f"t{i}",
                submitted_at=created + timedelta(seconds=2),
            )
            if i < LIVE_ROWS:
                fields.update(state=[State.PENDING, State.QUEUED, State.DREAMING][i % 3],
                              luma_id=None if i % 3 == 0 else f"luma-{i}")
                if i % 3 == 0:
                    fields["submitted_at"] = None
                if i % 3 == 2:
                    fields["dreaming_at"] = created + timedelta(seconds=5)
            elif i % 17 == 0:
                fields.update(state=State.FAILED, reason="Job failed", luma_id=f"luma-{i}",
                              failed_at=created + timedelta(seconds=40))
            else:
                fields.update(state=State.COMPLETED, luma_id=f"luma-{i}", completed_at=created + timedelta(seconds=95),
                              archive_state=ArchiveState.DONE, archive_file=f"archive/v{i}.mp4",
                              poster=f"posters/p{i}.jpg", archive_size=4_000_000, archive_received=4_000_000,
                              video_url=f"http://127.0.0.1:9/v{i}.mp4",
                              raw={"id": f"luma-{i}", "state": "completed", "assets": {"video": "x" * 200}})
            if i % 101 == 50:
                fields["deleted_at"] = created + timedelta(minutes=1)
            rows.append(Generation(**fields))
        Generation.objects.bulk_create(rows, batch_size=500)
        by_age = list(Generation.objects.order_by("-created_at", "-pk").values_list("pk", flat=True))
        Favourite.objects.bulk_create(
            [Favourite(user=users[0], generation_id=pk) for i, pk in enumerate(by_age) if i % 7 == 3], batch_size=500
        )
    # PostgreSQL's autovacuum gathers statistics by itself; SQLite has none unless someone runs ANALYZE.
    if analyze or connections[alias].vendor == "postgresql":
        with connections[alias].cursor() as cursor:
            cursor.execute("ANALYZE")
    live = Generation.objects.live().visible().values_list("pk", flat=True)
    return {"user": users[0], "page4": by_age[3 * 12], "live": [f"{pk}:0" for pk in live]}


def scenarios(facts: dict) -> list[tuple[str, str, dict, bool]]:
    """(name, path, query, htmx): what a person does in the library."""
    return [
        ("dashboard", "/", {}, False),
        ("library", "/library/", {}, True),
        ("search", "/library/", {"q": "lantern"}, True),
        ("search-none", "/library/", {"q": "zebra"}, True),
        ("filters", "/library/", {"state": "completed", "kind": "text_to_video", "model": "ray-2"}, True),
        ("mine", "/library/", {"owner": "mine"}, True),
        ("favourites", "/library/", {"favourites": "on"}, True),
        ("older-page", "/library/", {"before": facts["page4"]}, True),
        ("poll", "/poll/", {"live": facts["live"]}, False),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--database", default="", help="a postgres:// URL; databases <name>_100 and <name>_10000")
    parser.add_argument("--analyze", action="store_true",
                        help="run ANALYZE on SQLite too (the app never does), to see what planner statistics change")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (and PostgreSQL databases)")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="lumaweb-bench-"))
    if args.database:
        urls = postgres_urls(args.database)
        recreate_postgres(urls)
    else:
        urls = {n: f"sqlite:///{workdir / f'rows{n}.sqlite3'}" for n in SIZES}
    try:
        run(args, workdir, urls)
    finally:
        from django.db import connections

        connections.close_all()
        if args.database and not args.keep:
            recreate_postgres(urls, drop_only=True)
        if args.keep:
            print(f"kept {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)


def run(args, workdir: Path, urls: dict[int, str]) -> None:
    setup_django(workdir, urls)
    from django.db import connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from generations import models as generation_models

    started = time.perf_counter()
    facts = {n: fill(n, args.analyze) for n in SIZES}
    vendor = connections["default"].vendor
    if args.analyze and vendor == "sqlite":
        vendor += "+analyze"
    print(f"library_scaling: {vendor}, filled {' and '.join(map(str, SIZES))} generations "
          f"in {time.perf_counter() - started:.1f} s")
    clients = {}
    for n in SIZES:
        Router.alias = ALIASES[n]
        clients[n] = Client(HTTP_HOST="127.0.0.1", HTTP_ACCEPT_ENCODING="gzip, deflate, br")  # as a browser asks
        clients[n].force_login(facts[n]["user"])
    plans = {n: scenarios(facts[n]) for n in SIZES}

    def request(n: int, index: int):
        name, path, query, htmx = plans[n][index]
        Router.alias = ALIASES[n]
        headers = {"HX-Request": "true"} if htmx else {}
        response = clients[n].get(path, query, headers=headers)
        if response.status_code not in (200, 204):
            raise SystemExit(f"{name} on {n} rows answered {response.status_code}")
        return response

    # Queries per page, with an empty ETA cache (the most a page makes); and a check that both pages show alike.
    queries: dict[tuple[str, int], int] = {}
    cards: dict[tuple[str, int], int] = {}
    for index, (name, *_) in enumerate(plans[SIZES[0]]):
        for n in SIZES:
            generation_models._duration_cache.clear()
            with CaptureQueriesContext(connections[ALIASES[n]]) as captured:
                response = request(n, index)
            queries[name, n] = len(captured)
            body = response.content
            if response.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            cards[name, n] = body.decode().count('<article id="card-')

    times: dict[tuple[str, int], list[float]] = {key: [] for key in queries}
    warmup = 3
    gc.disable()
    try:
        for round_ in range(warmup + args.rounds):
            order = SIZES if round_ % 2 == 0 else SIZES[::-1]
            for index, (name, *_) in enumerate(plans[SIZES[0]]):
                for n in order:
                    began = time.perf_counter()
                    request(n, index)
                    elapsed = time.perf_counter() - began
                    if round_ >= warmup:
                        times[name, n].append(elapsed)
            gc.collect()
    finally:
        gc.enable()

    small, big = SIZES
    print(f"{'page':<12} {'ms@' + str(small):>8} {'ms@' + str(big):>9} {'ratio':>6} "
          f"{'queries@' + str(small):>12} {'queries@' + str(big):>14} {'cards':>7}")
    ratios = {}
    for name, *_ in plans[small]:
        a, b = statistics.median(times[name, small]) * 1000, statistics.median(times[name, big]) * 1000
        ratios[name] = b / a
        print(f"{name:<12} {a:>8.2f} {b:>9.2f} {b / a:>6.2f} {queries[name, small]:>12} {queries[name, big]:>14} "
              f"{cards[name, small]:>3}/{cards[name, big]:<3}")
    worst = max(ratios, key=ratios.get)
    max_queries = max(queries.values())
    constant = all(queries[name, small] == queries[name, big] for name, *_ in plans[small])
    print(f"rounds={args.rounds} (medians; A/B interleaved, order alternating), database={vendor}")
    print(f"library_scaling: database={vendor} rows={small}/{big} dashboard_ratio={ratios['dashboard']:.2f} "
          f"library_ratio={ratios['library']:.2f} worst_ratio={ratios[worst]:.2f}({worst}) "
          f"max_queries={max_queries} queries_constant={'yes' if constant else 'no'} goal: ratio<=1.3 queries<=8")


if __name__ == "__main__":
    main()
