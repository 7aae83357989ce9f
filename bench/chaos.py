"""Chaos run: push generations of every kind through the simulator with every fault on, then check nothing was lost.

    python bench/chaos.py --generations 500

Starts its own simulator, web server (gunicorn, for callbacks), job cluster and SQLite database under a
temporary folder (or PostgreSQL with --database-url), kills and restarts the cluster twice mid-run, lets
the sweep repair what the faults broke, and prints one line:

    chaos: generations=N converged=N% archived_ok=N% duplicate_creates=N stuck=N elapsed=Ns
"""

import argparse
import hashlib
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import Stack  # noqa: E402

REQUEST_CODE = """
import json, random
from django.contrib.auth import get_user_model
from generations.models import Generation, Kind, State
random.seed({seed})
users = [get_user_model().objects.get_or_create(username=f"chaos{{i}}")[0] for i in range(4)]
done = list(Generation.objects.filter(state=State.COMPLETED, kind__in=["text_to_video", "image_to_video"]).values_list("pk", flat=True))
made = 0
for i in range({count}):
    owner = random.choice(users)
    kind = random.choice({kinds})
    fields = dict(prompt=f"chaos clip {{i}} of {{kind}}", model="ray-2")
    if kind == "image_to_video":
        choice = random.randrange(3)
        if choice != 1: fields["frame0_url"] = f"https://images.example.com/{{i}}-start.jpg"
        if choice != 0: fields["frame1_url"] = f"https://images.example.com/{{i}}-end.jpg"
        fields["loop"] = choice == 0 and random.random() < 0.5
    elif kind == "image":
        fields["model"] = "photon-1"
    elif kind in ("extend", "reverse_extend", "interpolate", "upscale", "add_audio"):
        if not done: kind = "text_to_video"
        else:
            a = Generation.objects.get(pk=random.choice(done)); b = Generation.objects.get(pk=random.choice(done))
            fields.update({{"extend": dict(frame0_generation=a), "reverse_extend": dict(frame1_generation=a),
                            "interpolate": dict(frame0_generation=a, frame1_generation=b),
                            "upscale": dict(source=a, resolution="1080p", prompt=""),
                            "add_audio": dict(source=a, prompt="ambient hum")}}[kind])
    Generation.request(owner, kind=kind, **fields)
    made += 1
print(made)
"""

REPORT_CODE = """
import json
from generations.models import Generation
rows = list(Generation.objects.values("pk", "luma_id", "state", "archive_state", "sha256", "callback_token", "archive_file"))
print(json.dumps(rows))
"""


TERMINAL = ("completed", "failed", "rejected")


def unfinished(rows) -> list:
    return [r for r in rows if r["state"] not in TERMINAL or (r["state"] == "completed" and r["archive_state"] != "done")]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=900, help="give up after this many seconds")
    parser.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and logs")
    args = parser.parse_args()
    random.seed(args.seed)
    started = time.monotonic()

    with Stack(args.database_url, keep=args.keep, LUMA_MAX_CONCURRENT=60, LUMA_CREATES_PER_MINUTE=100000,
               LUMA_RECONCILE_GRACE_SECONDS=8, LUMA_STALL_SECONDS=10, Q_WORKERS=4, Q_TIMEOUT=60, Q_RETRY=70) as stack:
        stack.start_simulator("--seed", str(args.seed), "--time-scale", "0.08",
                              "--concurrent-limit", "60", "--creates-per-minute", "100000")
        stack.migrate()
        stack.start_web()
        stack.start_cluster()
        # Every fault at once: callbacks dropped, duplicated, reordered, delayed; 5xx on reads; 429 bursts;
        # cut downloads; expiring asset URLs; creates whose answer is lost.
        stack.sim("POST", "/_sim/faults", json={
            "drop_callbacks": 0.3, "duplicate_callbacks": 0.3, "reorder_callbacks": 0.3, "delay_callbacks": 0.5,
            "get_5xx": 0.1, "burst_429": 0.05, "cut_downloads": 0.2, "expire_asset_urls": 5,
            "drop_after_create": 0.05,
        })
        stack.sim("POST", "/_sim/config", json={"failure_rate": 0.05})

        first = max(1, args.generations // 5)
        basic = '["text_to_video", "image_to_video", "image"]'
        every = ('["text_to_video", "image_to_video", "image", "extend", "reverse_extend", "interpolate", '
                 '"upscale", "add_audio"]')
        stack.shell(REQUEST_CODE.format(seed=args.seed, count=first, kinds=basic))
        kills, second_batch, calm = 0, False, False
        while time.monotonic() < started + args.timeout:
            time.sleep(3)
            stack.manage("luma_sweep")
            elapsed = time.monotonic() - started
            if not second_batch and elapsed > 20:
                stack.shell(REQUEST_CODE.format(seed=args.seed + 1, count=args.generations - first, kinds=every))
                second_batch = True
            if kills < 2 and elapsed > 30 + kills * 40:
                stack.kill_cluster()
                time.sleep(2)
                stack.start_cluster()
                kills += 1
            if second_batch and kills == 2:
                if not calm and elapsed > 150:
                    # The storm ends (callbacks stay lost): from here the sweep alone must finish the job.
                    stack.sim("POST", "/_sim/faults", json={"get_5xx": 0, "burst_429": 0, "cut_downloads": 0,
                                                             "drop_after_create": 0, "expire_asset_urls": 0,
                                                             "drop_callbacks": 1.0})
                    calm = True
                if not unfinished(stack.shell_json(REPORT_CODE)):
                    break

        rows = stack.shell_json(REPORT_CODE)
        sim = {g["id"]: g for g in stack.sim("GET", "/_sim/generations")["generations"]}
        converged = archived_ok = completed = stuck = duplicates = 0
        for row in rows:
            remote = sim.get(row["luma_id"])
            if (row["state"] == "rejected" and remote is None) or (remote and remote["state"] == row["state"]):
                converged += 1
            if row in unfinished([row]):
                stuck += 1
            if row["state"] == "completed":
                completed += 1
                path = stack.workdir / "media" / row["archive_file"] if row["archive_file"] else None
                if row["archive_state"] == "done" and path and path.exists():
                    digest = hashlib.sha256(path.read_bytes()).hexdigest()
                    if digest == row["sha256"] == asset_sha256(remote):
                        archived_ok += 1
            creates = stack.sim("GET", "/_sim/creates", params={"callback_url_contains": row["callback_token"]})
            duplicates += max(0, creates["count"] - 1)
        total = len(rows)
        stats = stack.sim("GET", "/_sim/stats")
        fired = dict(stats["faults_fired"], **{f"callbacks_{k}": v for k, v in stats["callbacks"].items()
                                                 if k in ("dropped", "duplicated", "reordered")},
                     downloads_cut=stats["assets"].get("cut", 0))
        print("faults: " + " ".join(f"{name}={count}" for name, count in sorted(fired.items())))
        print(
            f"chaos: generations={total} converged={100 * converged / max(total, 1):.0f}% "
            f"archived_ok={100 * archived_ok / max(completed, 1):.0f}% duplicate_creates={duplicates} "
            f"stuck={stuck} elapsed={time.monotonic() - started:.0f}s"
        )


def asset_sha256(remote: dict | None) -> str | None:
    """The simulator's own checksum of the generation's main asset."""
    if not remote:
        return None
    return remote.get("sha256")


if __name__ == "__main__":
    main()
