"""The usage page and its CSV at 100,000 generations in one month (issue 10): server time and queries, with evidence.

    .venv/bin/python bench/usage_page.py [--rounds 20] [--rows 100000]
    .venv/bin/python bench/usage_page.py --database-url postgres://postgres@127.0.0.1:5432/lumaweb_bench_usage

In one process, through Django's test client (middleware, session, templates; no network): one database holding
--rows generations in this month (20 people, six models, every kind of outcome: about 6% failed, some refused, some
held for approval, a few still on their way) and a tenth as many in the month before, which the page must leave out.
The page is asked for by someone with a budget of their own, under a team budget. Each round asks for
/usage/?month=... and /usage.csv?month=... once; the script prints the median server time of each (goal: under
200 ms) and the SQL queries each makes. The usage query is answered from the app's spend_idx alone
(created_at, state, owner_id, model, price_cents: migration 0016).

Evidence printed first: the rows counted (all, in the month, billable in the month), and the page's and the CSV's
totals (the whole team's and each person's, in cents) compared with a direct SQL sum: every row joined to a price
table (one price per kind/model/resolution/duration, from pricing.estimate_cents) and summed by the database.
"""

import argparse
import gc
import os
import re
import shutil
import statistics
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PEOPLE = 20
MONTH = ""  # this month (set in fill): the page also shows the budgets then, as people see it most
# (kind, model, resolution, duration): what sets a price; rows cycle through them.
WORK = (("text_to_video", "ray-2", "720p", "5s"), ("text_to_video", "ray-flash-2", "1080p", "9s"),
        ("image", "photon-1", "", ""), ("extend", "ray-2", "540p", "5s"), ("image", "photon-flash-1", "", ""),
        ("text_to_video", "ray-3.2", "1080p", "10s"), ("image", "uni-1", "", ""), ("upscale", "ray-2", "4k", "5s"),
        ("add_audio", "ray-2", "720p", "5s"))


def setup_django(workdir: Path, database_url: str) -> None:
    os.environ.update(
        DJANGO_SETTINGS_MODULE="lumaweb.settings",
        LUMAWEB_VAR_DIR=str(workdir),
        MEDIA_ROOT=str(workdir / "media"),
        DATABASE_URL=database_url,
        DEBUG="0",
        LOG_LEVEL="WARNING",
        TIME_ZONE=os.environ.get("TIME_ZONE", "Europe/Berlin"),  # days are local days: not UTC on purpose
        LUMAAI_BASE_URL="http://127.0.0.1:9/dream-machine/v1",  # never called; a closed local port, in case
        LUMAAI_API_KEY="bench-key",
    )
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0)
    call_command("collectstatic", interactive=False, verbosity=0)


def fill(rows: int) -> tuple:
    from django.contrib.auth import get_user_model
    from django.db import transaction
    from django.utils import timezone
    from generations.budgets import month_bounds
    from generations.models import Generation, LumaAccount, Profile, State
    from generations.pricing import estimate_cents

    global MONTH
    start, end = month_bounds("")
    MONTH = f"{start:%Y-%m}"
    before = month_bounds(f"{start - timedelta(days=1):%Y-%m}")[0]
    User = get_user_model()
    with transaction.atomic():
        people = [User.objects.create(username=f"person{i:02d}", password="!") for i in range(PEOPLE)]
        viewer = people[0]
        LumaAccount.objects.create(pk=1, team_budget_cents=50_000_000)
        Profile.objects.create(user=people[0], monthly_budget_cents=1_000_000)
        batch = []
        span = (end - start).total_seconds()
        for i in range(rows + rows // 10):
            inside = i < rows
            when = (start + timedelta(seconds=span * i / rows) if inside
                    else before + timedelta(seconds=(start - before).total_seconds() * (i - rows) / (rows // 10)))
            kind, model, resolution, duration = WORK[i % len(WORK)]
            state = (State.FAILED if i % 17 == 0 else State.REJECTED if i % 101 == 3 else State.HELD
                     if i % 211 == 5 else State.DREAMING if i % 997 == 1 else State.COMPLETED)
            batch.append(Generation(owner=people[(i * 7) % PEOPLE], kind=kind, model=model, resolution=resolution,
                                    duration=duration, state=state, prompt=f"take {i}", created_at=when,
                                    created_day=timezone.localdate(when),
                                    price_cents=estimate_cents(kind, model, resolution, duration),
                                    deleted_at=when + timedelta(hours=1) if i % 89 == 0 else None))
            if len(batch) == 5000:
                Generation.objects.bulk_create(batch)
                batch = []
        Generation.objects.bulk_create(batch)
    vacuum()
    return start, end, viewer, State


def vacuum() -> None:
    """What autovacuum does on a live PostgreSQL (statistics, and the visibility map index-only scans need)."""
    from django.db import connection

    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")



def direct_sums(start, end) -> tuple[int, dict[str, int], int, int, int]:
    """(team cents, cents by person, rows, rows in the month, billable rows in the month) summed by the database
    from a price table: no ORM grouping, no app code but the price list."""
    from django.db import connection

    from generations.pricing import estimate_cents

    start, end = (connection.ops.adapt_datetimefield_value(moment) for moment in (start, end))
    with connection.cursor() as cursor:
        cursor.execute("CREATE TEMPORARY TABLE bench_price (kind varchar(20), model varchar(40), "
                       "resolution varchar(10), duration varchar(10), cents integer)")
        for kind, model, resolution, duration in WORK:
            cursor.execute("INSERT INTO bench_price VALUES (%s, %s, %s, %s, %s)",
                           [kind, model, resolution, duration, estimate_cents(kind, model, resolution, duration)])
        where = "g.created_at >= %s AND g.created_at < %s AND g.state NOT IN ('failed', 'rejected', 'held')"
        join = ("FROM generations_generation g JOIN bench_price p ON p.kind = g.kind AND p.model = g.model "
                "AND p.resolution = g.resolution AND p.duration = g.duration JOIN auth_user u ON u.id = g.owner_id")
        cursor.execute(f"SELECT u.username, SUM(p.cents) {join} WHERE {where} GROUP BY u.username", [start, end])
        by_person = dict(cursor.fetchall())
        cursor.execute(f"SELECT SUM(p.cents), COUNT(*) {join} WHERE {where}", [start, end])
        team, billable = cursor.fetchone()
        cursor.execute("SELECT COUNT(*) FROM generations_generation")
        everything = cursor.fetchone()[0]
        cursor.execute("SELECT COUNT(*) FROM generations_generation WHERE created_at >= %s AND created_at < %s",
                       [start, end])
        in_month = cursor.fetchone()[0]
        cursor.execute("DROP TABLE bench_price")
    return int(team), {k: int(v) for k, v in by_person.items()}, everything, in_month, billable


def timed(calls: dict, rounds: int) -> tuple[dict, dict]:
    """Median wall and CPU seconds of each call (CPU: this process's; the database's own on PostgreSQL is not in
    it). The machine is shared, so wall time includes waiting for a core."""
    times, cpu = {key: [] for key in calls}, {key: [] for key in calls}
    gc.disable()
    try:
        for round_ in range(3 + rounds):  # three warm-up rounds
            for key in (list(calls) if round_ % 2 == 0 else list(calls)[::-1]):
                began, began_cpu = time.perf_counter(), time.process_time()
                calls[key]()
                if round_ >= 3:
                    times[key].append(time.perf_counter() - began)
                    cpu[key].append(time.process_time() - began_cpu)
            gc.collect()
    finally:
        gc.enable()
    return ({key: statistics.median(values) for key, values in times.items()},
            {key: statistics.median(values) for key, values in cpu.items()})


def run(args, workdir: Path, database_url: str) -> None:
    setup_django(workdir, database_url)
    import csv
    import io

    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    from generations.budgets import usd

    began = time.perf_counter()
    start, end, viewer, _ = fill(args.rows)
    print(f"usage_page: load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores; {connection.vendor}, "
          f"TIME_ZONE={os.environ['TIME_ZONE']}, filled {args.rows:,} generations "
          f"in {MONTH} and {args.rows // 10:,} in the month before in {time.perf_counter() - began:.1f} s")
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(viewer)
    page_url, csv_url = f"/usage/?month={MONTH}", f"/usage.csv?month={MONTH}"

    team, by_person, everything, in_month, billable = direct_sums(start, end)
    page = client.get(page_url)
    sheet = client.get(csv_url)
    assert page.status_code == 200 and sheet.status_code == 200, (page.status_code, sheet.status_code)
    html = page.content.decode()
    shown_total = re.search(r'Team spend: <span class="total">([^<]+)</span>', html).group(1)
    lines = list(csv.DictReader(io.StringIO(sheet.content.decode())))
    csv_people: dict[str, int] = {}
    for line in lines:
        csv_people[line["person"]] = csv_people.get(line["person"], 0) + round(float(line["usd"]) * 100)
    csv_rows = sum(int(line["generations"]) for line in lines)
    days = {line["day"] for line in lines}
    print(f"  rows: {everything:,} in the database, {in_month:,} in {MONTH}, {billable:,} of them billable "
          f"(failed, refused and held left out; deleted ones count)")
    print(f"  direct SQL sum: {usd(team)} over {len(by_person)} people; page shows {shown_total}; "
          f"CSV: {usd(sum(csv_people.values()))} in {len(lines)} lines, {csv_rows:,} generations, {len(days)} days")
    same = shown_total == usd(team) and csv_people == by_person and csv_rows == billable
    print(f"  page and CSV agree with the database, person by person: {'yes' if same else 'NO'}")
    for name in sorted(by_person)[:3]:
        print(f"    {name}: SQL {usd(by_person[name])}, CSV {usd(csv_people.get(name, 0))}")

    queries = {}
    for name, url in (("page", page_url), ("csv", csv_url)):
        with CaptureQueriesContext(connection) as captured:
            client.get(url)
        queries[name] = len(captured.captured_queries)
    medians, cpu = timed({"page": lambda: client.get(page_url), "csv": lambda: client.get(csv_url)}, args.rounds)
    for name in ("page", "csv"):
        verdict = "ok" if medians[name] < 0.2 else "OVER 200 ms"
        print(f"    /usage{'/' if name == 'page' else '.csv'}: median {medians[name] * 1000:.1f} ms "
              f"(CPU {cpu[name] * 1000:.1f} ms) over {args.rounds} rounds, {queries[name]} queries ({verdict})")
    if not same:
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--database-url", dest="database", default="", help="a postgres:// URL (created, dropped)")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="lumaweb-usage-"))
    url = args.database or f"sqlite:///{workdir / 'usage.sqlite3'}"
    if args.database:
        recreate(url)
    try:
        run(args, workdir, url)
    finally:
        from django.db import connections

        connections.close_all()
        if args.database:
            recreate(url, drop_only=True)
        shutil.rmtree(workdir, ignore_errors=True)


def recreate(url: str, drop_only: bool = False) -> None:
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    name = urlsplit(url).path.lstrip("/")
    with psycopg.connect(urlunsplit(urlsplit(url)._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if not drop_only:
            conn.execute(f'CREATE DATABASE "{name}"')


if __name__ == "__main__":
    main()
