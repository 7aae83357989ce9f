"""Library page, filters, prompt search and the picker's search: 100,000 generations side by side with 100 (issue 8).

    .venv/bin/python bench/library_scaling.py [--rounds 20] [--analyze]
    .venv/bin/python bench/library_scaling.py --database-url postgres://postgres@127.0.0.1:5432/lumaweb_bench

In one process, through Django's test client (middleware, session, templates, gzip as a browser asks for it;
no network): two databases, one with 100 generations and one with 100,000, built from the same pattern so their
newest rows (the first page) are alike. Each round requests every page (the dashboard, the library partial with
each filter and several prompt searches, an older page, the poll) once from each database, alternating which goes
first; then the picker's search (finished videos or images, newest first, 24: the /pick/ page the create form
asks for) is timed the same way. The script prints median server times, the 100,000/100 ratio (goal
<= 1.3; the picker: < 50 ms) and the SQL queries per page (goal: the same at both sizes; counted with an empty ETA
cache, the most a page ever makes).

Evidence printed first: the rows counted in each database (and in SQLite's prompt index), and every search's
results compared with a plain `prompt__icontains` scan (first page and full count) for the scenarios and a sample
of other words. Then, at 100,000 rows only, the search query alone (no page) for matches spread over the whole
library from 1 row to 20,000, including both sides of search.PROBE_LIMIT (its worst cases).

SQLite files live in a temporary folder; with --database-url, PostgreSQL databases <name>_100 and <name>_100000
are created beside <name> and dropped afterwards. --analyze runs ANALYZE on SQLite too (the app never does).
"""

import argparse
import functools
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

SIZES = (100, 100_000)
ALIASES = {100: "default", 100_000: "big"}
LIVE_ROWS = 6  # the newest rows are in flight, in both databases
WORDS = ("fox snow dawn river neon city rain forest desert ocean glass robot dancer lantern mountain storm "
         "garden train violin comet").split()
# Words on some rows only (row i counted from the newest), for searches of known reach: "aurora" on the newest 13
# of every 5,000 (a full first page at both sizes, 260 rows in 100,000); spread evenly, "ember" on 493 rows and
# "velvet" on 508 in 100,000 (just under and just over search.PROBE_LIMIT, its worst cases), "quartz" on one row;
# "dusk" on every other row, so that a search with a state and a kind fills a page in the 100-row library too
# (with "lantern", 1 row in 5, the small library had 7 cards against 12: unlike pages).
TAGS = (("aurora", lambda i: i % 5000 < 13), ("ember", lambda i: i % 203 == 7), ("velvet", lambda i: i % 197 == 5),
        ("quartz", lambda i: i == 42), ("dusk", lambda i: i % 2 == 0),
        # Either side of the pickers' own limit (sources.PICKER_PROBE_LIMIT, 2,000): 2,000 rows and 2,041.
        ("cobalt", lambda i: i % 50 == 4), ("sienna", lambda i: i % 49 == 4))


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
        LUMAAI_BASE_URL="http://127.0.0.1:9/dream-machine/v1",
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
                owner=users[i % len(users)], kind=kind,
                prompt=f"A {' '.join(words)} scene, take {i}" + "".join(f" {tag}" for tag, on in TAGS if on(i)),
                model="photon-1" if kind == Kind.IMAGE else models[i % len(models)], resolution="720p",
                duration="5s", aspect_ratio="16:9", created_at=created, created_day=timezone.localdate(created),
                client_token=f"t{i}",
                submitted_at=created + timedelta(seconds=2),
            )
            if i < LIVE_ROWS:
                fields.update(state=[State.PENDING, State.QUEUED, State.DREAMING][i % 3],
                              luma_id=None if i % 3 == 0 else f"luma-{i}")
                if i % 3 == 0:
                    fields["submitted_at"] = None
                if i % 3 == 2:
                    fields["dreaming_at"] = created + timedelta(seconds=5)
            elif i % 17 == 0 or (i < 100 and i % 7 == 0):  # failures among the newest 100 too: a full page
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
        Generation.objects.bulk_create(rows, batch_size=2000)
        by_age = list(Generation.objects.order_by("-created_at", "-pk").values_list("pk", flat=True))
        Favourite.objects.bulk_create(
            [Favourite(user=users[0], generation_id=pk) for i, pk in enumerate(by_age) if i % 7 == 3], batch_size=2000
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
        ("state-live", "/library/", {"state": "live"}, True),
        ("state-done", "/library/", {"state": "completed"}, True),
        ("state-failed", "/library/", {"state": "failed"}, True),
        ("kind-image", "/library/", {"kind": "image"}, True),
        ("model", "/library/", {"model": "ray-flash-2"}, True),
        ("state+kind+model", "/library/", {"state": "completed", "kind": "text_to_video", "model": "ray-2"}, True),
        ("mine", "/library/", {"owner": "mine"}, True),
        ("favourites", "/library/", {"favourites": "on"}, True),
        ("older-page", "/library/", {"before": facts["page4"]}, True),
        ("search-common", "/library/", {"q": "lantern"}, True),
        ("search-rare", "/library/", {"q": "aurora"}, True),
        ("search-one", "/library/", {"q": "quartz"}, True),
        ("search-none", "/library/", {"q": "zebra"}, True),
        ("search-2char", "/library/", {"q": "ox"}, True),
        ("search-2none", "/library/", {"q": "zq"}, True),
        ("search+filters", "/library/", {"q": "dusk", "state": "completed", "kind": "text_to_video"}, True),
        ("search-none+mine", "/library/", {"q": "zebra", "owner": "mine", "favourites": "on"}, True),
        ("poll", "/poll/", {"live": facts["live"]}, False),
    ]


# The picker's search (issue 8, item 4): finished videos or images, newest first, 24 of them; asked of the
# picker's own page (/pick/), as the create form does.
PICKER_SEARCHES = (("video", "lantern"), ("video", "aurora"), ("video", "zebra"), ("video", "velvet"),
                   ("image", "ember"), ("image", "velvet"), ("image", "zebra"), ("image", "cobalt"),
                   ("image", "sienna"), ("video", "cobalt"), ("video", "sienna"))
# Words searched at 100,000 rows only, query alone: (word, rows it is on).
SPREAD = (("quartz", 1), ("aurora", 260), ("ember", 493), ("velvet", 508), ("lantern", 20000), ("zebra", 0),
          ("ox", 20000), ("zq", 0))
# More words compared with a plain icontains scan (evidence): substrings, other cases, punctuation.
SAMPLE = ("LANTERN", "ntern sc", "take 4", "take 12", "scene, take 99", "Storm", "rIVer neon", "e, t", "%", "_",
          '"', "dancer lantern", "violin comet", "a", "ta")




def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--database-url", "--database", dest="database", default="",
                        help="a postgres:// URL; databases <name>_100 and <name>_100000")
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


def evidence(n: int, searches: list[str]) -> tuple[int, int]:
    """Rows counted in database n, and every search compared with a plain icontains scan: (compared, differing)."""
    from django.db import connections

    from generations import search, sources
    from generations.models import Generation

    Router.alias = alias = ALIASES[n]
    rows = Generation.objects.visible()
    counted = f"{Generation.objects.count()} rows ({rows.count()} visible)"
    if connections[alias].vendor == "sqlite":
        with connections[alias].cursor() as cursor:
            cursor.execute(f"SELECT count(*) FROM {search.FTS_TABLE}_docsize")  # one row per indexed prompt
            counted += f", {cursor.fetchone()[0]} prompts in the FTS5 index"
    print(f"  {n:>7} rows: {counted}")
    differing = 0
    for text in searches:
        short = len(text.strip()) < search.MIN_TRIGRAM
        first = search.matching(rows, text)
        base = rows.filter(prompt__icontains=text.strip())
        page, expected = list(first.values_list("pk", flat=True)[:13]), list(base.values_list("pk", flat=True)[:13])
        # A short search looks through the newest search.SHORT_WINDOW rows only: compare it there.
        total, full = first.count(), (search.recent(base) if short else base).count()
        if page != expected or total != full:
            differing += 1
            print(f"    DIFFERS {text!r}: page {page} != {expected} or count {total} != {full}")
        # Each picker's page, as the create form asks for it (sources.pick), against a plain scan of its rows.
        for accept in ("video", "image"):
            got = [row.pk for row in sources.pick(accept, text)] if text.strip() else None
            plain = sources.finished(accept).filter(prompt__icontains=text.strip())
            want = list((search.recent(plain) if short else plain).values_list("pk", flat=True)[:sources.PICKER_SIZE])
            if got is not None and got != want:
                differing += 1
                print(f"    DIFFERS picker {accept} {text!r}: {got} != {want}")
    return len(searches) * 3, differing


def timed(calls: dict, rounds: int) -> dict:
    """Median seconds of each call, A/B interleaved with the order alternating, gc off while timing."""
    times = {key: [] for key in calls}
    warmup = 3
    gc.disable()
    try:
        for round_ in range(warmup + rounds):
            keys = list(calls) if round_ % 2 == 0 else list(calls)[::-1]
            for key in keys:
                began = time.perf_counter()
                calls[key]()
                elapsed = time.perf_counter() - began
                if round_ >= warmup:
                    times[key].append(elapsed)
            gc.collect()
    finally:
        gc.enable()
    return {key: statistics.median(values) for key, values in times.items()}


def run(args, workdir: Path, urls: dict[int, str]) -> None:
    setup_django(workdir, urls)
    from django.db import connections
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from generations import models as generation_models
    from generations import search, sources
    from generations.models import Generation

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
    small, big = SIZES

    searches = sorted({query["q"] for _, _, query, _ in plans[small] if "q" in query}
                      | {text for _, text in PICKER_SEARCHES} | {text for text, _ in SPREAD} | set(SAMPLE))
    print("evidence: rows counted; each search's first page and count against a plain icontains scan "
          "(the library's rows and the picker's)")
    compared = differing = 0
    for n in SIZES:
        done, bad = evidence(n, searches)
        compared, differing = compared + done, differing + bad
    print(f"  {compared} comparisons, {differing} differing")

    def request(n: int, index: int):
        name, path, query, htmx = plans[n][index]
        Router.alias = ALIASES[n]
        headers = {"HX-Request": "true"} if htmx else {}
        response = clients[n].get(path, query, headers=headers)
        if response.status_code not in (200, 204):
            raise SystemExit(f"{name} on {n} rows answered {response.status_code}")
        return response

    def pick(n: int, accept: str, text: str):
        Router.alias = ALIASES[n]
        response = clients[n].get("/pick/", {"accept": accept, "field": "source", "q": text},
                                  headers={"HX-Request": "true"})
        if response.status_code != 200:
            raise SystemExit(f"picker {accept} {text} on {n} rows answered {response.status_code}")
        return response

    # Queries per page, with an empty ETA cache (the most a page makes); and a check that both pages show alike.
    queries: dict[tuple[str, int], int] = {}
    cards: dict[tuple[str, int], int] = {}
    for index, (name, *_) in enumerate(plans[small]):
        for n in SIZES:
            generation_models._duration_cache.clear()
            with CaptureQueriesContext(connections[ALIASES[n]]) as captured:
                response = request(n, index)
            queries[name, n] = len(captured)
            body = response.content
            if response.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            cards[name, n] = body.decode().count('<article id="card-')
    for accept, text in PICKER_SEARCHES:
        name = f"picker {accept} {text}"
        for n in SIZES:
            with CaptureQueriesContext(connections[ALIASES[n]]) as captured:
                response = pick(n, accept, text)
            queries[name, n] = len(captured)
            body = response.content
            if response.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            cards[name, n] = body.decode().count('data-pick=')

    calls = {(name, n): functools.partial(request, n, index)
             for index, (name, *_) in enumerate(plans[small]) for n in SIZES}
    calls |= {(f"picker {accept} {text}", n): functools.partial(pick, n, accept, text)
              for accept, text in PICKER_SEARCHES for n in SIZES}
    medians = timed(calls, args.rounds)

    print(f"{'page':<22} {'ms@' + str(small):>8} {'ms@' + str(big):>9} {'ratio':>6} "
          f"{'queries@' + str(small):>12} {'queries@' + str(big):>14} {'cards':>9}")
    ratios = {}
    names = [name for name, *_ in plans[small]] + [f"picker {accept} {text}" for accept, text in PICKER_SEARCHES]
    for name in names:
        a, b = medians[name, small] * 1000, medians[name, big] * 1000
        ratios[name] = b / a
        print(f"{name:<22} {a:>8.2f} {b:>9.2f} {b / a:>6.2f} {queries[name, small]:>12} {queries[name, big]:>14} "
              f"{cards[name, small]:>4}/{cards[name, big]:<4}")

    # The search query alone at 100,000 rows, for matches spread over the whole library (the probe's worst cases).
    Router.alias = ALIASES[big]
    rows = Generation.objects.visible()

    def first_page(text: str) -> list[int]:
        return list(search.matching(rows, text).values_list("pk", flat=True)[:13])

    spread_calls = {text: functools.partial(first_page, text) for text, _ in SPREAD}
    spread = timed(spread_calls, args.rounds)
    print(f"search query alone at {big} rows (first 13 pks, newest first), PROBE_LIMIT={search.PROBE_LIMIT}, "
          f"SHORT_WINDOW={search.SHORT_WINDOW}:")
    for text, _ in SPREAD:
        found = rows.filter(prompt__icontains=text).count()
        print(f"  {text!r:<10} on {found:>6} rows: {spread[text] * 1000:6.2f} ms")

    pages = [name for name, *_ in plans[small]]
    worst = max(pages, key=ratios.get)
    pickers = [name for name in names if name.startswith("picker")]
    slowest_picker = max(pickers, key=lambda name: medians[name, big])
    max_queries = max(queries[name, n] for name in pages for n in SIZES)
    constant = all(queries[name, small] == queries[name, big] for name in names)
    print(f"rounds={args.rounds} (medians; A/B interleaved, order alternating), database={vendor}")
    print(f"library_scaling: database={vendor} rows={small}/{big} dashboard_ratio={ratios['dashboard']:.2f} "
          f"library_ratio={ratios['library']:.2f} worst_ratio={ratios[worst]:.2f}({worst}) "
          f"picker_ms@{big}={medians[slowest_picker, big] * 1000:.2f}({slowest_picker}) "
          f"max_queries={max_queries} queries_constant={'yes' if constant else 'no'} "
          f"icontains_differing={differing}/{compared} goal: ratio<=1.3 picker<50ms queries constant")


if __name__ == "__main__":
    main()
