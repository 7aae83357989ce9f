"""Webhook callbacks per second under gunicorn (2 workers) on PostgreSQL, side by side with a bare Django view.

    python bench/webhook_throughput.py [--seconds 10] [--clients 8] [--database-url postgres://...]

Posts realistic callbacks (dreaming, completed, duplicates and stale repeats, as Luma does) for many
generations. Callbacks are not signed, so "dreaming" is shown at once and "completed" only prompts a confirming
read of Luma (a queued job, at most one per generation every 5 s). The line says how many generations that got
callbacks show dreaming, how many were prompted, and that none was marked completed on a callback's word.
"""

import argparse
import json
import multiprocessing as mp
import random
import sys
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import Stack  # noqa: E402

SETUP = """
import json, uuid
from django.contrib.auth import get_user_model
from generations.models import Generation, State
user = get_user_model().objects.get_or_create(username="bench")[0]
rows = [Generation(owner=user, prompt=f"bench {{i}}", state=State.QUEUED, luma_id=str(uuid.uuid4())) for i in range({count})]
Generation.objects.bulk_create(rows)
print(json.dumps([[g.callback_token, g.luma_id] for g in Generation.objects.all()]))
"""
RESULT = """
import json
from generations.models import Generation
print(json.dumps({g: [state, nudged is not None] for g, state, nudged in
                  Generation.objects.values_list("luma_id", "state", "nudged_at")}))
"""


def body(luma_id: str, state: str) -> bytes:
    assets = {"video": f"http://127.0.0.1:1/assets/{luma_id}.mp4", "image": None} if state == "completed" else None
    return json.dumps({"id": luma_id, "generation_type": "video", "state": state, "failure_reason": None,
                       "created_at": "2026-11-24T10:00:00.000000Z", "assets": assets, "model": "ray-2",
                       "request": {"prompt": "bench", "model": "ray-2"}}).encode()


def client(url_for, payloads, seconds, results):
    session = requests.Session()
    done = errors = 0
    completed = set()
    deadline = time.monotonic() + seconds
    i = 0
    while time.monotonic() < deadline:
        payload = payloads[i % len(payloads)]
        url, data = url_for(payload)
        i += 1
        response = session.post(url, data=data, headers={"Content-Type": "application/json"}, timeout=10)
        if response.status_code == 200:
            done += 1
            if b'"completed"' in data:
                completed.add(payload[2])
        else:
            errors += 1
    results.put((done, errors, completed))


def run(label, url_for, groups, seconds, clients):
    """Each client gets whole generations, whose callbacks it sends in order as one Luma worker would."""
    results = mp.Queue()
    shares = [[p for group in groups[n::clients] for p in group] for n in range(clients)]
    procs = [mp.Process(target=client, args=(url_for, share, seconds, results)) for share in shares]
    started = time.monotonic()
    for p in procs:
        p.start()
    totals = [results.get() for _ in procs]
    for p in procs:
        p.join()
    elapsed = time.monotonic() - started
    done, errors = sum(t[0] for t in totals), sum(t[1] for t in totals)
    if errors:
        print(f"  {label}: {errors} non-200 answers")
    return done / elapsed, set().union(*(t[2] for t in totals))


class Urls:
    def __init__(self, root):
        self.root = root

    def webhook(self, payload):
        token, data, _ = payload
        return f"{self.root}/webhooks/luma/{token}/", data

    def bare(self, payload):
        return f"{self.root}/bench/bare/", payload[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--generations", type=int, default=2000)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/lumaweb_bench")
    args = parser.parse_args()

    if args.database_url.startswith("postgres"):
        import psycopg

        admin = args.database_url.rsplit("/", 1)[0] + "/postgres"
        name = args.database_url.rsplit("/", 1)[1]
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')

    with Stack(args.database_url, DJANGO_SETTINGS_MODULE="bench.bench_settings", Q_SYNC=0) as stack:
        stack.migrate()
        stack.start_web(workers=2, threads=1)
        rows = stack.shell_json(SETUP.format(count=args.generations))
        # Each generation: dreaming, dreaming again, completed, completed again, then a stale dreaming.
        payloads = []
        for token, luma_id in rows:
            for state in ("dreaming", "dreaming", "completed", "completed", "dreaming"):
                payloads.append((token, body(luma_id, state), luma_id))
        groups = [payloads[i:i + 5] for i in range(0, len(payloads), 5)]
        random.Random(1).shuffle(groups)
        urls = Urls(stack.web_root)

        for path in ("/bench/bare/",):
            requests.post(stack.web_root + path, data=b"{}", timeout=5)  # warm up
        bare, _ = run("bare", urls.bare, groups, args.seconds, args.clients)
        hook, completed = run("webhook", urls.webhook, groups, args.seconds, args.clients)
        final = stack.shell_json(RESULT)

    # Every generation sent "completed" was prompted to check with Luma and shows dreaming (its progress), and no
    # callback alone made anything completed: Luma (absent here) was never asked, so nothing may be.
    prompted = sum(1 for luma_id in completed if final.get(luma_id, [None, False])[1])
    dreaming = sum(1 for luma_id in completed if final.get(luma_id, [None])[0] == "dreaming")
    believed = sum(1 for state, _ in final.values() if state == "completed")
    print(
        f"webhook: {hook:.0f}/s vs bare view {bare:.0f}/s = {hook / bare:.2f}x "
        f"(2 web workers, {args.clients} clients, {'PostgreSQL' if 'postgres' in args.database_url else 'SQLite'}); "
        f"of {len(completed)} generations sent completed: {prompted} prompted a check with Luma, {dreaming} show "
        f"dreaming, {believed} marked completed on a callback's word"
    )


if __name__ == "__main__":
    main()
