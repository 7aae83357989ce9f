"""Archive of a large asset: our archiver's throughput side by side with curl on the same URL, and its memory.

    python bench/archive_throughput.py [--megabytes 200] [--rounds 3]

The simulator serves one generation's MP4 padded to --megabytes. Each round downloads it with curl to a
file, then archives it with generations.archive in a fresh process that reports its peak RSS growth.
Before each timed download the page cache's dirty pages are flushed (`sync`) and the previous file is
deleted, so neither side pays for writing back the other's bytes. Our side includes what curl does not do:
sha256, fsync, the database updates and the poster.
"""

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import KEY, Stack  # noqa: E402

ARCHIVE = """
import json, time
from generations.models import Generation, State, ArchiveState

def vm(field):
    for line in open("/proc/self/status"):
        if line.startswith(field):
            return int(line.split()[1]) * 1024

from generations.archive import archive_generation
row = Generation.objects.create(prompt="bench", state=State.COMPLETED, luma_id="{luma_id}-{round}",
                                archive_state=ArchiveState.WAITING, video_url="{url}")
before = vm("VmRSS:")
started = time.perf_counter()
archive_generation(row.pk)
elapsed = time.perf_counter() - started
row.refresh_from_db()
print(json.dumps({{"elapsed": elapsed, "size": row.archive_size, "state": row.archive_state,
                  "error": row.archive_error, "growth": vm("VmHWM:") - before}}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    size = args.megabytes * 1024 * 1024
    with Stack() as stack:
        stack.start_simulator("--seed", "1", "--time-scale", "0.01", "--asset-bytes", str(size))
        stack.migrate()
        headers = {"Authorization": f"Bearer {KEY}"}
        created = stack.sim("POST", "/dream-machine/v1/generations/video", json={"prompt": "a big file", "model": "ray-2"},
                            headers=headers)
        stack.sim("POST", f"/_sim/generations/{created['id']}/finish", json={"state": "completed"})
        remote = stack.sim("GET", f"/dream-machine/v1/generations/{created['id']}", headers=headers)
        url = remote["assets"]["video"]
        curl_times, ours, growths = [], [], []
        for round_ in range(args.rounds):
            target = stack.workdir / "curl.bin"
            os.sync()
            started = time.perf_counter()
            subprocess.run(["curl", "-sS", "-o", str(target), url], check=True)
            curl_times.append(time.perf_counter() - started)
            assert target.stat().st_size >= size, target.stat().st_size
            target.unlink()
            os.sync()
            result = stack.shell_json(ARCHIVE.format(luma_id=created["id"], round=round_, url=url))
            assert result["state"] == "done", result
            ours.append(result["elapsed"])
            for archived in (stack.workdir / "media").rglob("*.mp4"):
                archived.unlink()
            growths.append(result["growth"])
        curl_best, ours_best = min(curl_times), min(ours)
        mb = size / 1e6
        print(
            f"archive: {args.megabytes} MiB ours {mb / ours_best:.0f} MB/s vs curl {mb / curl_best:.0f} MB/s = "
            f"{curl_best / ours_best:.2f}x; worker peak RSS growth {max(growths) / 2**20:.1f} MiB "
            f"(best of {args.rounds} rounds each, side by side)"
        )


if __name__ == "__main__":
    main()
