"""ZIP export of archived videos: our streamed export side by side with `tar -cf - <same files> | cat >/dev/null`,
and the web worker's memory while it streams.

    python bench/export_throughput.py [--megabytes 1024] [--files 10] [--rounds 3]

--files videos of random bytes (incompressible, like video) totalling --megabytes are archived rows; the files are
read once first so both sides read from the page cache. Each round times tar, then a POST of every id to /export/
on granian (WSGI, 1 worker, as `manage.py up` runs it) read by curl into /dev/null, while the worker's RSS is
sampled every 10 ms. A last download is kept and checked: its length against Content-Length, every member's
sha256 against metadata.json and the database, and the member count.
"""

import argparse
import hashlib
import json
import shlex
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.harness import PY, Stack, free_port, wait_http  # noqa: E402

SEED = """
import hashlib, json, os
from django.contrib.auth import get_user_model
from django.utils import timezone
from generations.models import ArchiveState, Generation, State
user = get_user_model().objects.create_user("bench", password="bench-pass-42")
folder = os.path.join("{media}", "archive")
os.makedirs(folder, exist_ok=True)
rows = {{}}
for n in range({files}):
    name = f"archive/bench-{{n}}.mp4"
    digest = hashlib.sha256()
    with open(os.path.join("{media}", name), "wb") as out:
        for _ in range({chunks}):
            block = os.urandom(1024 * 1024)
            digest.update(block)
            out.write(block)
    row = Generation.objects.create(owner=user, prompt=f"Bench clip {{n}}", model="ray-2", resolution="720p",
                                    duration="5s", state=State.COMPLETED, completed_at=timezone.now(),
                                    archive_state=ArchiveState.DONE, archive_file=name, sha256=digest.hexdigest(),
                                    archive_size={chunks} * 1024 * 1024)
    rows[row.pk] = {{"path": os.path.join("{media}", name), "sha256": row.sha256}}
print(json.dumps(rows))
"""


def children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        if int(fields.get("PPid", "0").strip() or 0) == pid:
            found.append(int(status.parent.name))
    return found


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Sampler(threading.Thread):
    """The highest RSS of `pids` (summed) while running."""

    def __init__(self, pids: list[int]):
        super().__init__(daemon=True)
        self.pids, self.peak, self.running = pids, 0, True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, sum(rss(pid) for pid in self.pids))
            time.sleep(0.01)

    def stop(self) -> int:
        self.running = False
        self.join()
        return self.peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--megabytes", type=int, default=1024)
    parser.add_argument("--files", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    chunks = args.megabytes // args.files
    with Stack() as stack:
        stack.migrate()
        stack.manage("collectstatic", "--noinput")  # the login page links hashed static names
        media = stack.workdir / "media"
        rows = {int(pk): row for pk, row in stack.shell_json(SEED.format(media=media, files=args.files,
                                                                         chunks=chunks)).items()}
        paths = [row["path"] for row in rows.values()]
        for path in paths:  # both sides read from the page cache
            subprocess.run(["cat", path], stdout=subprocess.DEVNULL, check=True)
        total = sum(Path(path).stat().st_size for path in paths)

        port = free_port()
        server = stack.spawn([PY, "-m", "granian", "--interface", "wsgi", "--no-ws", "--host", "127.0.0.1",
                              "--port", str(port), "--workers", "1", "--blocking-threads", "4",
                              "lumaweb.wsgi:application"], "granian")
        stack.others.append(server)
        root = f"http://127.0.0.1:{port}"
        wait_http(f"{root}/accounts/login/")
        session = requests.Session()
        session.get(f"{root}/accounts/login/")
        session.post(f"{root}/accounts/login/", data={"username": "bench", "password": "bench-pass-42",
                                                     "csrfmiddlewaretoken": session.cookies["csrftoken"]})
        assert "sessionid" in session.cookies, "could not log in"
        cookie = "; ".join(f"{name}={value}" for name, value in session.cookies.items())
        form = "&".join(f"ids={pk}" for pk in rows)
        curl = ["curl", "-sS", "--fail", "-X", "POST", "-H", f"Cookie: {cookie}",
                "-H", f"X-CSRFToken: {session.cookies['csrftoken']}", "-d", form, f"{root}/export/"]
        # Warm the worker (imports, templates, the first query) so what is measured is the stream.
        subprocess.run(curl + ["-o", "/dev/null"], check=True)
        workers = children(server.pid)
        assert workers, "no granian worker found"

        tar_times, ours, growths, streamed = [], [], [], []
        tar = f"tar -cf - {' '.join(shlex.quote(p) for p in paths)} | cat >/dev/null"
        for _ in range(args.rounds):
            started = time.perf_counter()
            subprocess.run(["bash", "-o", "pipefail", "-c", tar], check=True, stderr=subprocess.DEVNULL)
            tar_times.append(time.perf_counter() - started)
            before = sum(rss(pid) for pid in workers)
            sampler = Sampler(workers)
            sampler.start()
            started = time.perf_counter()
            done = subprocess.run(curl + ["-o", "/dev/null", "-w", "%{size_download}"], check=True,
                                  capture_output=True, text=True)
            ours.append(time.perf_counter() - started)
            growths.append(sampler.stop() - before)
            streamed.append(int(done.stdout))

        # The evidence: one more download, kept and checked member by member.
        target = stack.workdir / "export.zip"
        headers = subprocess.run(curl + ["-o", str(target), "-D", "-"], check=True, capture_output=True,
                                 text=True).stdout
        length = int(next(line.split(":", 1)[1] for line in headers.splitlines()
                          if line.lower().startswith("content-length:")))
        assert target.stat().st_size == length, (target.stat().st_size, length)
        with zipfile.ZipFile(target) as archive:
            meta = json.loads(archive.read("metadata.json"))
            checked = 0
            for record in meta["generations"]:
                for item in record["files"]:
                    digest = hashlib.sha256()
                    with archive.open(item["path"]) as member:
                        for block in iter(lambda: member.read(1024 * 1024), b""):
                            digest.update(block)
                    assert digest.hexdigest() == item["sha256"], item["path"]
                    if item["role"] == "video":
                        assert item["sha256"] == rows[record["id"]]["sha256"], record["id"]
                    checked += 1
            members = len(archive.namelist())
        assert checked == len(rows) and all(size == length for size in streamed), (checked, streamed, length)

        tar_best, ours_best = min(tar_times), min(ours)
        result = {
            "bytes_of_videos": total, "zip_bytes": length, "members": members, "videos_verified": checked,
            "tar_seconds": [round(t, 3) for t in tar_times], "export_seconds": [round(t, 3) for t in ours],
            "tar_mb_s": round(total / 1e6 / tar_best), "export_mb_s": round(length / 1e6 / ours_best),
            "ratio": round(tar_best / ours_best, 2),
            "worker_rss_growth_mib": [round(g / 2**20, 1) for g in growths],
            "worker_rss_before_mib": round(before / 2**20, 1),
        }
        print(json.dumps(result))
        print(f"export: {length:,} B ({members} members, every sha256 checked) at {result['export_mb_s']} MB/s vs "
              f"tar {result['tar_mb_s']} MB/s = {result['ratio']}x; worker RSS growth "
              f"{max(growths) / 2**20:.1f} MiB (best of {args.rounds} rounds each, side by side)")


if __name__ == "__main__":
    main()
