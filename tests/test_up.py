"""The README's run command (`./dev run` is `manage.py up`): from nothing to a playing video, then Ctrl-C stops it all."""

import hashlib
import io
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.plugins.simulator import free_port

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.cluster, pytest.mark.no_db, pytest.mark.timeout(150)]


def processes_of(var_dir: Path) -> list[int]:
    """Every process still running with this instance's LUMAWEB_VAR_DIR (web, jobs, simulator, workers)."""
    marker = f"LUMAWEB_VAR_DIR={var_dir}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "environ").read_bytes().split(b"\0"):
                    pids.append(int(entry.name))
            except OSError:
                continue  # gone already, or not ours to read
    return pids


def child_of(parent: int, marker: str) -> int:
    """The PID of parent's child whose command line contains marker (the simulator, qcluster or granian)."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rpartition(")")[2].split()[1])
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except (OSError, IndexError, ValueError):
                continue
            if ppid == parent and marker in cmdline:
                return int(entry.name)
    raise AssertionError(f"no child of {parent} runs {marker}")


def wait_for(predicate, timeout: float, what: str, log: Path):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; the run printed:\n{log.read_text(errors='replace')[-3000:]}")


def csrf(html: str) -> str:
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)


def test_the_run_command_goes_from_nothing_to_a_playing_video_outlives_its_children_and_ctrl_c_stops_everything(
        tmp_path):
    port, sim_port, var = free_port(), free_port(), tmp_path / "var"
    env = {key: value for key, value in os.environ.items()
           if key not in ("DATABASE_URL", "REDIS_URL", "LUMAAI_API_KEY", "LUMAAI_BASE_URL", "LUMA_BASE_URL",
                          "LUMA_AGENTS_API_KEY", "LUMA_AGENTS_BASE_URL", "PUBLIC_BASE_URL", "MEDIA_ROOT", "STATIC_ROOT",
                          "DJANGO_SETTINGS_MODULE")}
    env.update(LUMAWEB_VAR_DIR=str(var), PORT=str(port), SIMULATOR_PORT=str(sim_port), SIMULATOR_TIME_SCALE="0.1")
    log = tmp_path / "up.log"
    with open(log, "wb") as out:
        # Its own process group, as a terminal's foreground job: Ctrl-C reaches the whole group.
        up = subprocess.Popen([sys.executable, "manage.py", "up"], cwd=ROOT, env=env, stdout=out,
                              stderr=subprocess.STDOUT, start_new_session=True)
    site = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: "lumaweb is up" in log.read_text(errors="replace"), 60, "the site to come up", log)
        output = log.read_text()
        password = (var / "initial_admin_password.txt").read_text().strip()
        assert f"Log in as 'admin' with password {password}" in output
        assert f"using the Luma simulator at http://127.0.0.1:{sim_port}/dream-machine/v1" in output

        browser = requests.Session()
        login = browser.get(f"{site}/accounts/login/")
        home = browser.post(f"{site}/accounts/login/", data={
            "username": "admin", "password": password, "csrfmiddlewaretoken": csrf(login.text)})
        assert home.url == f"{site}/" and "Make something" in home.text

        def create(n: int) -> str:
            page = browser.get(f"{site}/")
            created = browser.post(f"{site}/create/", allow_redirects=False, data={
                "csrfmiddlewaretoken": csrf(page.text), "what": "video", "prompt": f"A teddy bear in Times Square {n}",
                "model": "ray-2", "resolution": "720p", "duration": "5s", "aspect_ratio": "16:9",
                "client_token": f"up-test-{n}"})
            assert created.status_code == 302
            return re.fullmatch(r"/#card-(\d+)", created.headers["Location"]).group(1)

        def archived(pk: str):
            answer = browser.get(f"{site}/generations/{pk}/video/", headers={"Range": "bytes=0-"})
            return answer if answer.status_code == 206 else None

        def luma_made() -> list[dict]:
            return requests.get(f"http://127.0.0.1:{sim_port}/_sim/generations", timeout=5).json()["generations"]

        first = create(1)
        # The Agents API too (no callbacks: only polls find it done), its first poll on the simulator's clock.
        page = browser.get(f"{site}/")
        made = browser.post(f"{site}/create/", allow_redirects=False, data={
            "csrfmiddlewaretoken": csrf(page.text), "what": "image", "image_model": "uni-1", "aspect_ratio": "16:9",
            "prompt": "A paper lantern over a river", "client_token": "up-test-uni"})
        assert made.status_code == 302, made.text[-2000:]
        image_pk = re.fullmatch(r"/#card-(\d+)", made.headers["Location"]).group(1)
        video = wait_for(lambda: archived(first), 60, "the video to be archived", log)
        assert video.headers["Content-Type"] == "video/mp4"
        assert [g["sha256"] for g in luma_made()] == [hashlib.sha256(video.content).hexdigest()]
        image = wait_for(lambda: archived(image_pk), 30, "the Uni-1 image to be archived", log)
        agents_made = requests.get(f"http://127.0.0.1:{sim_port}/_sim/agents/generations", timeout=5).json()
        assert image.headers["Content-Type"] == "image/png"
        assert [list(g["sha256s"].values()) for g in agents_made["generations"]] == [
            [hashlib.sha256(image.content).hexdigest()]]
        middle = browser.get(f"{site}/generations/{first}/video/", headers={"Range": "bytes=100-199"})
        assert middle.status_code == 206 and middle.content == video.content[100:200]
        assert len(processes_of(var)) >= 4  # up, simulator, web server, the job cluster
        # Luma's callbacks reached the site and were logged, without the token that is their only credential.
        token = luma_made()[0]["callback_url"].rstrip("/").rpartition("/")[2]
        assert "/webhooks/luma/" in log.read_text() and token not in log.read_text()

        # A child that dies is restarted, and the site goes on working.
        for name, marker in (("jobs", "qcluster"), ("web", "granian")):
            os.kill(child_of(up.pid, marker), signal.SIGKILL)
            wait_for(lambda: f"{name} exited with code -9; restarting it (restart 1" in log.read_text(), 20,
                     f"{name} to be restarted", log)

        def site_answers() -> bool:
            try:
                return browser.get(f"{site}/", timeout=5).status_code == 200
            except requests.RequestException:
                return False

        wait_for(site_answers, 30, "the site to answer again", log)
        second = create(2)
        # The simulator too, and with its state file it still knows what it made and what it is making.
        wait_for(lambda: len(luma_made()) == 2, 20, "the second create to reach the simulator", log)
        time.sleep(0.5)
        os.kill(child_of(up.pid, "generations.simulator"), signal.SIGKILL)
        wait_for(lambda: "simulator exited with code -9; restarting it (restart 1" in log.read_text(), 20,
                 "the simulator to be restarted", log)
        again = wait_for(lambda: archived(second), 60, "the second video to be archived", log)
        assert [g["sha256"] for g in luma_made()] == [hashlib.sha256(video.content).hexdigest(),
                                                      hashlib.sha256(again.content).hexdigest()]

        os.killpg(up.pid, signal.SIGINT)  # Ctrl-C
        assert up.wait(timeout=30) == 0
        wait_for(lambda: not processes_of(var), 20, "every process to stop", log)
    finally:
        for pid in processes_of(var):
            os.kill(pid, signal.SIGKILL)


def test_a_child_that_keeps_dying_is_restarted_with_a_back_off_then_stops_everything(monkeypatch):
    from django.core.management.base import CommandError

    from generations.management.commands import up

    monkeypatch.setattr(up, "MAX_BACKOFF", 0.1)
    out, err = io.StringIO(), io.StringIO()
    command = up.Command(stdout=out, stderr=err)
    command.children, command.stopping = [], False
    command.start("jobs", [sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ))
    with pytest.raises(CommandError, match=r"jobs exited with code 3, 5 times within a minute; stopping everything"):
        command.supervise()
    assert err.getvalue().splitlines() == [f"jobs exited with code 3; restarting it (restart {n}, in 0.1 s)"
                                           for n in range(1, 5)]
