"""Fixtures that wire lumaweb to the Luma simulator: settings, an inline job runner, and a real job cluster.

- `luma_settings`: the app talks to the running simulator; files go to a temporary MEDIA_ROOT.
- `jobs`: tasks are collected instead of queued and run inline by `jobs.run()` (unit tests).
- `luma_stack`: the live server, a real `manage.py qcluster` subprocess and the simulator, together.
"""

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from django.conf import settings as django_settings
from django.db import connection

# Nothing listens on the discard port: callbacks to it fail, as if Luma's callbacks were lost.
NOWHERE = "http://127.0.0.1:9"
# The simulator's Agents API takes any key shaped like Luma's ("luma-api-..."), each its own namespace.
AGENTS_KEY = "luma-api-lumaweb-tests"


@pytest.fixture
def luma_settings(settings, luma_sim, tmp_path):
    settings.LUMAAI_API_KEY = luma_sim.api_key
    settings.LUMA_BASE_URL = luma_sim.base_url
    settings.LUMA_ASSET_HOSTS = [urlsplit(luma_sim.base_url).netloc]
    settings.LUMA_AGENTS_API_KEY = AGENTS_KEY
    settings.LUMA_AGENTS_BASE_URL = f"{luma_sim.root}/agents"
    settings.LUMA_AGENTS_ASSET_HOSTS = [urlsplit(luma_sim.base_url).netloc]
    settings.PUBLIC_BASE_URL = NOWHERE
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LUMA_RECONCILE_GRACE_SECONDS = 2
    settings.LUMA_FOLLOW_SECONDS = 0  # inline jobs: one pass of the follower, never a sleeping loop
    return settings


@dataclass
class InlineJobs:
    """Collects enqueued tasks and runs them in this process, in order, when asked."""

    queue: list = field(default_factory=list)
    done: list = field(default_factory=list)

    def add(self, name: str, *args) -> None:
        self.queue.append((name, args))

    def run(self, limit: int = 500) -> list:
        from generations import tasks

        ran = []
        while self.queue and len(ran) < limit:
            name, args = self.queue.pop(0)
            getattr(tasks, name)(*args)
            ran.append((name, args))
        self.done.extend(ran)
        return ran

    def names(self) -> list[str]:
        return [name for name, _ in self.queue]


@pytest.fixture
def jobs(monkeypatch):
    from generations import tasks

    runner = InlineJobs()
    monkeypatch.setattr(tasks, "enqueue", runner.add)
    return runner


def _database_url_for_subprocess() -> str:
    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@dataclass
class JobCluster:
    process: subprocess.Popen
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill_hard(self) -> None:
        """Kill the cluster and its workers at once, mid-task, as a crash would."""
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)  # main PID only: a group SIGTERM can hang django-q2
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()


def start_cluster(env_overrides: dict, log_path: Path) -> JobCluster:
    env = {**os.environ, **env_overrides, "Q_SYNC": "0"}
    handle = open(log_path, "ab")
    process = subprocess.Popen(
        [sys.executable, "manage.py", "qcluster"],
        cwd=django_settings.BASE_DIR,
        env=env,
        stdout=handle,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    return JobCluster(process, log_path)


@dataclass
class Stack:
    url: str
    sim: object
    cluster: JobCluster
    env: dict
    tmp: Path

    def restart_cluster(self) -> None:
        self.cluster.stop()
        self.cluster = start_cluster(self.env, self.tmp / "qcluster.log")


@pytest.fixture
def luma_stack(transactional_db, live_server, luma_sim, settings, tmp_path, monkeypatch):
    """The whole product: web server (live_server), a real django-q2 cluster and the simulator."""
    from django_q.conf import Conf

    monkeypatch.setattr(Conf, "SYNC", False)
    media = tmp_path / "media"
    settings.LUMAAI_API_KEY = luma_sim.api_key
    settings.LUMA_BASE_URL = luma_sim.base_url
    settings.LUMA_ASSET_HOSTS = [urlsplit(luma_sim.base_url).netloc]
    settings.LUMA_AGENTS_API_KEY = AGENTS_KEY
    settings.LUMA_AGENTS_BASE_URL = f"{luma_sim.root}/agents"
    settings.LUMA_AGENTS_ASSET_HOSTS = [urlsplit(luma_sim.base_url).netloc]
    settings.PUBLIC_BASE_URL = live_server.url
    settings.MEDIA_ROOT = media
    settings.LUMA_RECONCILE_GRACE_SECONDS = 2
    env = {
        "DATABASE_URL": _database_url_for_subprocess(),
        "LUMAAI_API_KEY": luma_sim.api_key,
        "LUMAAI_BASE_URL": luma_sim.base_url,
        "LUMA_AGENTS_API_KEY": AGENTS_KEY,
        "LUMA_AGENTS_BASE_URL": f"{luma_sim.root}/agents",
        "LUMA_AGENTS_ASSET_HOSTS": urlsplit(luma_sim.base_url).netloc,
        "PUBLIC_BASE_URL": live_server.url,
        "MEDIA_ROOT": str(media),
        "LUMA_RECONCILE_GRACE_SECONDS": "2",
        "LUMA_FOLLOW_SECONDS": "5",
        "Q_WORKERS": "2",
        "Q_TIMEOUT": "60",
        "Q_RETRY": "70",
    }
    stack = Stack(live_server.url, luma_sim, start_cluster(env, tmp_path / "qcluster.log"), env, tmp_path)
    yield stack
    # The test is over: nothing the cluster does now matters, so it is killed rather than stopped gracefully
    # (django-q2's orderly stop takes a second or two, for each of some 80 tests).
    stack.cluster.kill_hard()


def wait_until(predicate, timeout: float = 20, interval: float = 0.2, message: str = "condition"):
    """Poll predicate until it returns something truthy; fail the test with message after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    pytest.fail(f"timed out after {timeout} s waiting for {message}")
