"""Luma API calls per completed generation, counted at the simulator, with callbacks working and all dropped.

    python bench/api_calls.py [--generations 6] [--seconds 90]

Runs the real stack (simulator, gunicorn, job cluster with its once-a-minute sweep schedule) and lets each
generation take --seconds to finish, as a real 90-second Ray generation would. Prints one line per scenario.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import Stack  # noqa: E402

REQUEST = """
from django.contrib.auth import get_user_model
from generations.models import Generation, Kind
user = get_user_model().objects.get_or_create(username="bench")[0]
for i in range({count}):
    Generation.request(user, kind=Kind.TEXT_TO_VIDEO, prompt=f"bench clip {{i}}", model="ray-2")
"""
STATUS = """
import json
from generations.models import Generation
print(json.dumps(list(Generation.objects.values("luma_id", "state", "archive_state"))))
"""


def scenario(name: str, drop: float, count: int, seconds: float) -> None:
    with Stack(LUMA_STALL_SECONDS=120) as stack:
        queued = 3.0
        stack.start_simulator("--seed", "1", "--queued-seconds", str(queued), "--dreaming-seconds", str(seconds - queued))
        stack.migrate()
        stack.start_web()
        stack.start_cluster()
        stack.sim("POST", "/_sim/faults", json={"drop_callbacks": drop})
        started = time.monotonic()
        stack.shell(REQUEST.format(count=count))
        while time.monotonic() - started < seconds * 6:
            rows = stack.shell_json(STATUS)
            if rows and all(r["archive_state"] == "done" for r in rows):
                break
            time.sleep(5)
        rows = stack.shell_json(STATUS)
        ids = {r["luma_id"] for r in rows if r["state"] == "completed"}
        stats = stack.sim("GET", "/_sim/stats")
        # Every request the simulator's API answered. Calls about generations (creates, gets, lists) are what a
        # generation costs; ping, credits and the camera-motion and concept lists are the team's housekeeping
        # (once at start, then every few minutes whatever the number of generations). Asset downloads come
        # from Luma's CDN, not the API, and are not counted.
        requests_by_route = stats["requests"]
        about_generations = sum(n for route, n in requests_by_route.items()
                                if route.split(" ")[1].startswith("/generations")
                                and not route.endswith(("/camera_motion/list", "/concepts/list")))
        housekeeping = sum(requests_by_route.values()) - about_generations
        breakdown = " ".join(f"{route.replace(' ', '')}={n}" for route, n in sorted(requests_by_route.items()))
        print(
            f"api_calls[{name}]: completed={len(ids)}/{count} calls_per_completed="
            f"{about_generations / max(len(ids), 1):.2f} (+{housekeeping} housekeeping calls in the run) "
            f"generation_seconds={seconds:.0f} elapsed={time.monotonic() - started:.0f}s ({breakdown})"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--generations", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=90)
    args = parser.parse_args()
    scenario("callbacks working", 0.0, args.generations, args.seconds)
    scenario("callbacks dropped", 1.0, args.generations, args.seconds)


if __name__ == "__main__":
    main()
