"""Chaos run: push generations of every kind through the simulator with every fault on, forge callbacks with valid
tokens, then check that what the app shows is what Luma made.

    python bench/chaos.py --generations 500                         # fast cadence, about 3-5 minutes
    python bench/chaos.py --generations 40 --production-cadence     # production cadence, about 10-15 minutes
    python bench/chaos.py --provider agents --generations 40        # Luma's Agents API (Ray 3.2, Uni-1) instead
    python bench/chaos.py --provider mixed --generations 60         # half on each API, in one run

Starts its own simulator, web server (gunicorn, for callbacks), job cluster and SQLite database under a temporary
folder (or PostgreSQL with --database-url), kills and restarts the cluster twice mid-run, lets the sweep repair
what the faults broke (until every row is finished, or nothing has changed for a while after the storm), and prints
detail lines, then one summary line:

    chaos: generations=N converged=N% archived_ok=N% duplicate_creates=N lost_creates=N stuck=N rejected=N forged_effective=N ssrf_hits=N elapsed=Ns

Faults: callbacks dropped, duplicated, reordered and delayed; 5xx on reads; 429 bursts; cut downloads; expiring
asset URLs; creates whose answer is lost; the list endpoint answering 500 for a window mid-run (list_500_for); a few
requests Luma refuses (a two-letter prompt). Forged callbacks, POSTed to the live web server with tokens read from
the database: `completed` pointing at another generation's asset (wrong_asset), `failed` before the real end
(early_failed), `completed` with an asset on a host that is not allowed (evil_host) or hidden behind a backslash
(`http://127.0.0.1:<canary>\\@<simulator>/x.mp4`, backslash_host), and a callback with a made-up id before Luma's
create answer (before_create). Forged asset URLs point at a canary server on 127.0.0.1 that counts every connection.

- converged: the row's state is the simulator's for its luma_id (or rejected, and Luma has no such id), over every
  row but the lost creates.
- archived_ok: completed rows whose archived file hashes to the simulator's sha256 of the asset (for the Agents API,
  every output: each layer of a layering, an EXR beside an HDR clip).
- lost_creates: Agents rows whose create answer was lost, waiting for a person ("Luma may have made and billed this;
  we could not confirm"); the Agents API has no list to find them in. Dream Machine finds its own through the list.
- rejected: rows that ended rejected; a detail line shows the simulator made nothing for them.
- forged_effective: forged rows whose outcome differs from the simulator's truth (state, archived bytes, or a
  luma_id other than the generation carrying the row's callback token). ssrf_hits: connections to the canary.
The exit status is 1 when a goal is missed: converged or archived_ok below 100%, any duplicate create, stuck row,
effective forgery, canary hit, rejected row Luma did not refuse, or any other row off Luma's truth (for the
Agents API also: a luma_id Luma does not know, a generation without its owner's user_id).

--provider agents runs the same storm on Luma's Agents API (bench/chaos_agents.py: every type, Ray 3.2 with HDR and
EXR, extend/edit/reframe by generation, Uni-1 images with references, image_edit, layering) with its faults: lost
create answers and 502s after accepting, 429s for requests per minute and for concurrent jobs, 5xx on reads, cut
and expired downloads, output URLs that expire within seconds; the cluster is killed twice as before. It has no
callbacks, so nothing is forged; the app and the simulator both keep Luma's own Agents limits (30 creates a
minute, 10 concurrent jobs).
--provider mixed runs both APIs in one run, each with its own faults (forgeries against the Dream Machine rows).

--production-cadence runs the sweep only from the django-q2 schedule (once a minute, as in production) with the
default LUMA_RECONCILE_GRACE_SECONDS and LUMA_STALL_SECONDS (120 s each), a longer list outage (150 s) and a later
calm; the fast default runs `manage.py luma_sweep` every 3 s with 8 s grace and 10 s stall. Meant for a small N
(40): lost callbacks then wait for the minute sweep and lost creates for the 120 s grace; the storm alone lasts
4 minutes, so a run takes about 5 minutes on 2 cores, longer when rows wait for a backed-off poll (the fast run
with 60 generations takes about 3 minutes).
"""

import argparse
import hashlib
import random
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench import chaos_agents  # noqa: E402
from bench.harness import Canary, Stack  # noqa: E402

REQUEST_CODE = """
import json, random
from django.contrib.auth import get_user_model
from generations.models import Generation, Kind, State
random.seed({seed})
users = [get_user_model().objects.get_or_create(username=f"chaos{{i}}")[0] for i in range(4)]
done = list(Generation.objects.filter(state=State.COMPLETED, kind__in=["text_to_video", "image_to_video"], provider="dream_machine").values_list("pk", flat=True))
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
for i in range({refused}):
    # Luma refuses prompts shorter than 3 characters: these rows must end rejected, with nothing made.
    Generation.request(random.choice(users), kind=Kind.TEXT_TO_VIDEO, prompt="no", model="ray-2")
    made += 1
print(made)
"""

# Rows asked for and forged at once, before admission can send their create: the forged callback carries a
# made-up id and reaches the web server before Luma has even been asked.
EARLY_FORGE_CODE = """
import json, uuid, requests
from django.contrib.auth import get_user_model
from generations.models import Generation, Kind
owner = get_user_model().objects.get_or_create(username="chaos0")[0]
sent = []
for i in range({count}):
    row, _ = Generation.request(owner, kind=Kind.TEXT_TO_VIDEO, prompt=f"chaos early forgery {{i}}", model="ray-2")
    state = "dreaming" if i % 2 == 0 else "completed"
    body = {{"id": str(uuid.uuid4()), "generation_type": "video", "state": state, "failure_reason": None,
             "created_at": "2025-01-01T00:00:00.000000Z", "model": "ray-2", "request": {{}},
             "assets": {{"video": {asset!r} if state == "completed" else None, "image": None, "progress_video": None}}}}
    try:
        status = requests.post("{web_root}/webhooks/luma/" + row.callback_token + "/", json=body, timeout=10).status_code
    except requests.RequestException as exc:
        status = type(exc).__name__
    sent.append([row.pk, status])
print(json.dumps(sent))
"""

REPORT_CODE = """
import json
from django.contrib.auth import get_user_model
from generations.models import Generation
from generations.providers import user_token
rows = list(Generation.objects.values("pk", "luma_id", "state", "archive_state", "sha256", "callback_token",
                                      "archive_file", "reason", "provider", "prompt", "kind", "failed_locally",
                                      "extra_files", "owner_id"))
tokens = {user.pk: user_token(user) for user in get_user_model().objects.all()}
for row in rows:
    row["user_token"] = tokens.get(row.pop("owner_id"))
print(json.dumps(rows))
"""

TERMINAL = ("completed", "failed", "rejected")
FORGERIES = ("wrong_asset", "early_failed", "evil_host", "backslash_host", "before_create")
TOKEN = re.compile(r"/webhooks/luma/([^/?#]+)")


def unfinished(rows) -> list:
    return [r for r in rows if r["state"] not in TERMINAL or (r["state"] == "completed" and r["archive_state"] != "done")]


def token_of(callback_url: str | None) -> str:
    found = TOKEN.search(callback_url or "")
    return found.group(1) if found else ""


class Forger:
    """Sends forged callbacks with valid tokens to the web server while the real generations are still running.

    Tokens come from the database (the main loop hands over its latest rows); the simulator tells which of those
    rows' generations are still queued or dreaming, so the forged news arrives before the real end.
    """

    def __init__(self, stack: Stack, canary: Canary, budget: int):
        self.stack, self.canary, self.budget = stack, canary, budget
        self.rows: list[dict] = []
        self.sent: dict[int, tuple[str, object]] = {}  # row pk -> (forgery, web server's answer)
        self.errors = 0
        self.lock = threading.Lock()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True, name="forger")

    def count(self, kind: str) -> int:
        with self.lock:
            return sum(1 for forged, _status in self.sent.values() if forged == kind)

    def note(self, pk: int, kind: str, status) -> None:
        with self.lock:
            self.sent[pk] = (kind, status)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        if self.thread.ident is not None:  # never started when no row uses Dream Machine
            self.thread.join(timeout=30)

    def _run(self) -> None:
        while not self.stopping.wait(0.4):
            try:
                self._tick()
            except (requests.RequestException, ValueError, KeyError) as exc:
                self.errors += 1  # a forgery lost to a fault is no reason to end the run
                if self.errors <= 3:
                    print(f"forger: {type(exc).__name__}: {exc}", file=sys.stderr)

    def _tick(self) -> None:
        with self.lock:
            rows, taken = list(self.rows), set(self.sent)
        if not rows:
            return
        sim = self.stack.sim("GET", "/_sim/generations")["generations"]
        running = {token_of(g["callback_url"]): g for g in sim if g["state"] in ("queued", "dreaming")}
        done = [g for g in sim if g["state"] == "completed" and not g["deleted"]]
        for row in rows:
            if row["pk"] in taken or row["provider"] == "agents":  # the Agents API has no callbacks to forge
                continue
            if row["state"] == "unconfirmed" and not row["luma_id"] and self.count("before_create") < self.budget:
                # Luma made it but its answer was lost: a fake id now must not take the real one's place.
                self._send(row, "before_create", self._body(None, "dreaming", fake=True, output="video"))
                continue
            target = running.get(row["callback_token"])
            kind = next((k for k in FORGERIES[:4] if self.count(k) < self.budget), None)
            if not target or kind is None:
                continue
            output = target["generation_type"]
            if kind == "wrong_asset":
                other = next((g for g in done if g["generation_type"] == output and g["id"] != target["id"]), None)
                if other is None:
                    continue
                url = self.stack.sim("GET", f"/_sim/generations/{other['id']}")["generation"]["assets"][output]
                body = self._body(target, "completed", output=output, asset=url)
            elif kind == "early_failed":
                body = self._body(target, "failed", output=output)
            elif kind == "evil_host":
                scheme = "https" if self.count(kind) % 2 else "http"
                body = self._body(target, "completed", output=output,
                                  asset=f"{scheme}://127.0.0.1:{self.canary.port}/evil.mp4")
            else:
                sim_netloc = self.stack.sim_root.split("://", 1)[1]
                body = self._body(target, "completed", output=output,
                                  asset=f"http://127.0.0.1:{self.canary.port}\\@{sim_netloc}/x.mp4")
            self._send(row, kind, body)
            taken.add(row["pk"])

    def _body(self, target: dict | None, state: str, output: str, fake: bool = False, asset: str | None = None):
        base = {}
        if target is not None:
            base = self.stack.sim("GET", f"/_sim/generations/{target['id']}")["generation"]
        return {**base, "id": str(uuid.uuid4()) if fake else target["id"], "generation_type": output,
                "state": state, "failure_reason": "Job failed" if state == "failed" else None,
                "created_at": base.get("created_at", "2025-01-01T00:00:00.000000Z"),
                "assets": {"video": None, "image": None, "progress_video": None, **({output: asset} if asset else {})}}

    def _send(self, row: dict, kind: str, body: dict) -> None:
        url = f"{self.stack.web_root}/webhooks/luma/{row['callback_token']}/"
        try:
            status = requests.post(url, json=body, timeout=15).status_code
        except requests.RequestException as exc:
            status = type(exc).__name__
        self.note(row["pk"], kind, status)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=500)
    parser.add_argument("--provider", choices=("dream-machine", "agents", "mixed"), default="dream-machine",
                        help="which of Luma's APIs the rows use (mixed: half each)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--timeout", type=float, default=0, help="give up after this many seconds "
                        "(default 900, or 2400 with --production-cadence)")
    parser.add_argument("--database-url", default="", help="default: a fresh SQLite file")
    parser.add_argument("--production-cadence", action="store_true",
                        help="sweep once a minute from the schedule, default grace and stall settings")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder and logs")
    args = parser.parse_args()
    random.seed(args.seed)
    started = time.monotonic()
    production = args.production_cadence
    timeout = args.timeout or (2400 if production else 900)
    # (list outage starts, lasts, storm ends, seconds between checks, calm seconds without change that end the run;
    # longer than the longest poll interval, 10 minutes, in production)
    list_at, list_for, calm_at, every, quiet = (25, 150, 240, 10, 720) if production else (25, 40, 150, 3, 180)
    cadence = {} if production else {"LUMA_RECONCILE_GRACE_SECONDS": 8, "LUMA_STALL_SECONDS": 10}
    agents_count = {"dream-machine": 0, "agents": args.generations, "mixed": args.generations // 2}[args.provider]
    v1_count = args.generations - agents_count
    budget = max(2, v1_count // 20) if v1_count else 0
    refused = max(1, v1_count // 30) if v1_count else 0
    canary = Canary()

    # The Agents API keeps Luma's own limits at both ends (30 creates a minute, 10 concurrent jobs per key).
    with Stack(args.database_url, keep=args.keep, agents=bool(agents_count), LUMA_MAX_CONCURRENT=60,
               LUMA_CREATES_PER_MINUTE=100000, Q_WORKERS=4, Q_TIMEOUT=60, Q_RETRY=70, **cadence) as stack:
        for name in ("LUMA_RECONCILE_GRACE_SECONDS", "LUMA_STALL_SECONDS"):
            if production:
                stack.env.pop(name, None)  # the defaults in lumaweb/settings.py, whatever this shell exports
        # A generation dreams for about 5 s (60 s x 0.08): long enough for a forged callback to beat the real end.
        stack.start_simulator("--seed", str(args.seed), "--time-scale", "0.08", "--dreaming-seconds", "60",
                              "--concurrent-limit", "60", "--creates-per-minute", "100000")
        stack.migrate()
        stack.start_web()
        stack.start_cluster()
        if v1_count:
            stack.sim("POST", "/_sim/faults", json={
                "drop_callbacks": 0.3, "duplicate_callbacks": 0.3, "reorder_callbacks": 0.3, "delay_callbacks": 0.5,
                "get_5xx": 0.1, "burst_429": 0.05, "cut_downloads": 0.2, "expire_asset_urls": 5,
                "drop_after_create": 0.05,
            })
            stack.sim("POST", "/_sim/config", json={"failure_rate": 0.05})
        if agents_count:
            stack.sim("POST", "/_sim/agents/faults", json=chaos_agents.FAULTS)
            stack.sim("POST", "/_sim/agents/config", json={"failure_rate": 0.05})
        forger = Forger(stack, canary, budget)

        first = max(1, v1_count // 5) if v1_count else 0
        agents_first = max(1, agents_count // 5) if agents_count else 0
        basic = '["text_to_video", "image_to_video", "image"]'
        every_kind = ('["text_to_video", "image_to_video", "image", "extend", "reverse_extend", "interpolate", '
                      '"upscale", "add_audio"]')
        if first:
            stack.shell(REQUEST_CODE.format(seed=args.seed, count=first, kinds=basic, refused=0))
        if agents_first:
            stack.shell(chaos_agents.request_code(args.seed, "a", agents_first, chaos_agents.FIRST_KINDS, 0))
        rows = forger.rows = stack.shell_json(REPORT_CODE, attempts=5)
        if v1_count:
            forger.start()
        kills, second_batch, listed_down, calm = 0, False, False, False
        kill_at = [30, 70]
        agents_second = not agents_count
        sweep_errors: list = []
        last_seen, changed_at = None, time.monotonic()
        while time.monotonic() < started + timeout:
            time.sleep(every)
            if not production:
                try:
                    stack.manage("luma_sweep")
                except subprocess.CalledProcessError as exc:
                    sweep_errors.append((exc.stderr or "").strip().splitlines()[-1:] or [f"exit {exc.returncode}"])
            elapsed = time.monotonic() - started
            if not agents_second and elapsed > 20 and (chaos_agents.sources_ready(rows) or elapsed > 120):
                # Extend, edit, reframe, image_edit and layering need a finished clip and image of this run first.
                rest = agents_count - agents_first
                agents_refused = min(max(1, agents_count // 30), rest)
                stack.shell(chaos_agents.request_code(args.seed + 1, "b", rest - agents_refused,
                                                      chaos_agents.EVERY_KIND, agents_refused))
                agents_second = True
                if kills < 2:  # the storm (a kill among these rows, then 100 s more) covers them too
                    kill_at[1] = max(kill_at[1], elapsed + 15)
                calm_at = max(calm_at, elapsed + 100)
            if not second_batch and elapsed > 20 and not v1_count:
                second_batch = True
            if not second_batch and elapsed > 20:
                early = (budget + 1) // 2
                rest = v1_count - first - early
                stack.shell(REQUEST_CODE.format(seed=args.seed + 1, count=max(0, rest - refused), kinds=every_kind,
                                                refused=min(refused, rest)))
                fresh = stack.shell_json(REPORT_CODE, attempts=5)  # the new tokens, before their generations end
                with forger.lock:
                    forger.rows = fresh
                fake_asset = f"http://127.0.0.1:{canary.port}/early.mp4"
                try:  # not retried: each attempt asks for new rows
                    early_sent = stack.shell_json(EARLY_FORGE_CODE.format(count=early, web_root=stack.web_root,
                                                                          asset=fake_asset))
                except (subprocess.CalledProcessError, ValueError, IndexError) as exc:
                    print(f"early forgeries not sent: {exc}", file=sys.stderr)
                    early_sent = []
                for pk, status in early_sent:
                    forger.note(pk, "before_create", status)
                second_batch = True
            if not listed_down and elapsed > list_at and v1_count:
                stack.sim("POST", "/_sim/faults", json={"list_500_for": list_for})
                listed_down = True
            if kills < 2 and elapsed > kill_at[kills]:
                stack.kill_cluster()
                time.sleep(2)
                stack.start_cluster()
                kills += 1
            rows = stack.shell_json(REPORT_CODE, attempts=5)
            with forger.lock:
                forger.rows = rows
            seen = sorted((r["pk"], r["state"], r["archive_state"], r["luma_id"]) for r in rows)
            if seen != last_seen:
                last_seen, changed_at = seen, time.monotonic()
            if second_batch and agents_second and kills == 2:
                if not calm and elapsed > calm_at:
                    # The storm ends (callbacks stay lost): from here the sweep alone must finish the job.
                    forger.stop()
                    stack.sim("POST", "/_sim/faults", json={"get_5xx": 0, "burst_429": 0, "cut_downloads": 0,
                                                             "drop_after_create": 0, "expire_asset_urls": 0,
                                                             "list_500_for": 0, "drop_callbacks": 1.0})
                    if agents_count:
                        stack.sim("POST", "/_sim/agents/faults", json=chaos_agents.CALM)
                    calm = True
                if calm and not unfinished(rows):
                    break
                if calm and time.monotonic() - changed_at > quiet:
                    print(f"nothing changed for {quiet} s after the storm: stopping with rows unfinished", file=sys.stderr)
                    break
        forger.stop()
        time.sleep(1)  # a fetch started by the last sweep reaches the canary before we count
        if sweep_errors:
            print(f"sweep: {len(sweep_errors)} manual sweeps failed, last: {sweep_errors[-1][0]}")
        return report(stack, canary, forger, started)


def report(stack: Stack, canary: Canary, forger: Forger, started: float) -> int:
    everything = stack.shell_json(REPORT_CODE, attempts=5)
    rows = [row for row in everything if row["provider"] != "agents"]
    agents_rows = [row for row in everything if row["provider"] == "agents"]
    sim_list = stack.sim("GET", "/_sim/generations")["generations"]
    sim = {g["id"]: g for g in sim_list}
    carriers: dict[str, list[dict]] = {}
    for g in sim_list:
        carriers.setdefault(token_of(g["callback_url"]), []).append(g)
    converged = archived_ok = completed = stuck = duplicates = 0
    rejected, rejected_made, rejected_unrefused, refused_attempts = 0, 0, 0, 0
    effective: dict[str, int] = dict.fromkeys(FORGERIES, 0)
    off_truth = 0  # rows no forgery touched that still differ from what Luma made for their token
    for row in rows:
        remote = sim.get(row["luma_id"])
        mine = carriers.get(row["callback_token"], [])
        if (row["state"] == "rejected" and remote is None and not mine) or (remote and remote["state"] == row["state"]):
            converged += 1
        if row in unfinished([row]):
            stuck += 1
        digest = archived_sha256(stack, row)
        if row["state"] == "completed":
            completed += 1
            if row["archive_state"] == "done" and digest and digest == row["sha256"] == asset_sha256(remote):
                archived_ok += 1
        creates = stack.sim("GET", "/_sim/creates", params={"callback_url_contains": row["callback_token"]})
        duplicates += max(0, creates["count"] - 1)
        if row["state"] == "rejected":
            rejected += 1
            refused_attempts += creates["attempts"]
            rejected_made += creates["count"] > 0 or bool(row["luma_id"])
            rejected_unrefused += creates["attempts"] == 0
        forged = forger.sent.get(row["pk"])
        if not matches_truth(row, mine, digest):
            if forged:
                effective[forged[0]] += 1
            else:
                off_truth += 1
    v1_total, v1_converged = len(rows), converged
    agents = chaos_agents.figures(stack, agents_rows) if agents_rows else {}
    lost = agents.get("lost", 0)
    converged += agents.get("converged", 0)
    completed += agents.get("completed", 0)
    archived_ok += agents.get("archived_ok", 0)
    duplicates += agents.get("duplicates", 0)
    rejected += agents.get("rejected", 0)
    rejected_made += agents.get("rejected_made", 0)
    stuck += sum(1 for row in agents_rows if row in unfinished([row]))
    total = len(everything)
    rest = total - lost  # converged is computed over every row but the lost creates waiting for a person
    if agents_rows and rows:
        print(f"by provider: dream_machine rows={v1_total} converged={v1_converged} agents rows={len(agents_rows)} "
              f"converged={agents.get('converged', 0)} lost_creates={lost}")
    stats = stack.sim("GET", "/_sim/stats")
    fired = dict(stats["faults_fired"], **{f"callbacks_{k}": v for k, v in stats["callbacks"].items()
                                             if k in ("dropped", "duplicated", "reordered")},
                 downloads_cut=stats["assets"].get("cut", 0))
    if rows:
        print("faults: " + " ".join(f"{name}={count}" for name, count in sorted(fired.items())))
    answers: dict[str, dict[str, int]] = {kind: {} for kind in FORGERIES}
    for kind, status in forger.sent.values():
        answers[kind][str(status)] = answers[kind].get(str(status), 0) + 1
    if rows:
        print("forged: " + " ".join(f"{kind}=sent:{sum(answers[kind].values())},effective:{effective[kind]},answers:"
                                    f"{'/'.join(f'{s}x{n}' for s, n in sorted(answers[kind].items())) or '-'}"
                                    for kind in FORGERIES) + f" errors={forger.errors} unforged_rows_off_truth={off_truth}")
    print(f"rejected: rows={rejected} simulator_generations_for_them={rejected_made} "
          f"create_attempts_luma_refused={refused_attempts} rejected_without_asking_luma={rejected_unrefused}")
    print(f"ssrf: canary_hits={canary.hits} requests={canary.lines[:5]}")
    forged_effective = sum(effective.values())
    print(
        f"chaos: generations={total} converged={100 * converged / max(rest, 1):.0f}% "
        f"archived_ok={100 * archived_ok / max(completed, 1):.0f}% duplicate_creates={duplicates} lost_creates={lost} "
        f"stuck={stuck} rejected={rejected} forged_effective={forged_effective} ssrf_hits={canary.hits} "
        f"elapsed={time.monotonic() - started:.0f}s"
    )
    missed = [name for name, bad in (
        ("converged", converged < rest), ("archived_ok", archived_ok < completed), ("duplicate_creates", duplicates),
        ("stuck", stuck), ("forged_effective", forged_effective), ("ssrf_hits", canary.hits),
        ("rejected rows Luma made", rejected_made), ("rejected rows never sent", rejected_unrefused),
        ("unforged rows off Luma's truth", off_truth),
        ("Agents rows whose luma_id Luma does not know", agents.get("unknown_ids", 0)),
        ("Agents generations without their owner's user_id", agents.get("user_ids_wrong", 0)),
        ("no generations", not total),
    ) if bad]
    canary.stop()
    if missed:
        print("goal missed: " + ", ".join(missed), file=sys.stderr)
        return 1
    return 0


def archived_sha256(stack: Stack, row: dict) -> str | None:
    """The sha256 of the archived file on disk (not the row's own claim), or None without a file."""
    path = stack.workdir / "media" / row["archive_file"] if row["archive_file"] else None
    if not path or not path.is_file():
        return None
    return hashlib.sha256(path.read_bytes()).hexdigest()


def matches_truth(row: dict, carriers: list[dict], digest: str | None) -> bool:
    """Whether a row shows what Luma made for its callback token: the same generation, state and bytes."""
    if not carriers:
        return row["state"] == "rejected" and not row["luma_id"]  # nothing made: only a refused create may say so
    remote = next((g for g in carriers if g["id"] == row["luma_id"]), None)
    if remote is None or remote["state"] != row["state"]:
        return False
    return remote["state"] != "completed" or digest == asset_sha256(remote)


def asset_sha256(remote: dict | None) -> str | None:
    """The simulator's own checksum of the generation's main asset."""
    if not remote:
        return None
    return remote.get("sha256")


if __name__ == "__main__":
    sys.exit(main())
