"""Shared plumbing for bench scripts: start the simulator, web server and job cluster in a temporary folder."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
KEY = "bench-key"
AGENTS_KEY = "luma-api-bench"  # the Agents API's keys start with "luma-api-"; the simulator takes any such key


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_http(url: str, timeout: float = 30, headers=None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=2, headers=headers)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not come up")


class Canary:
    """A server on 127.0.0.1 that nothing should ever reach: it counts every connection and keeps each request line.

    Forged asset URLs point here; any hit means the app fetched a URL it should have refused.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.hits = 0
        self.lines: list[str] = []
        canary = self

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def verify_request(self, request, client_address) -> bool:
                with canary.lock:
                    canary.hits += 1  # counted per connection, so a TLS handshake or a bare socket counts too
                return True

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _answer(self):
                with canary.lock:
                    canary.lines.append(self.requestline[:200])
                body = b"canary: this URL must never be fetched"
                self.send_response(200)
                self.send_header("Content-Type", "video/mp4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            do_GET = do_POST = do_HEAD = _answer

        self.server = Server(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True).start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Stack:
    """A simulator, optionally a gunicorn web server and a django-q2 cluster, sharing one temporary folder.

    With agents=True the app is also given Luma's Agents API (the simulator's /agents, its storage host allowed for
    downloads); otherwise only Dream Machine v1 is configured, as before.
    """

    def __init__(self, database_url: str = "", keep: bool = False, agents: bool = False, **settings):
        self.workdir = Path(tempfile.mkdtemp(prefix="lumaweb-bench-"))
        self.keep = keep
        self.sim_port, self.web_port = free_port(), free_port()
        self.sim_root = f"http://127.0.0.1:{self.sim_port}"
        self.web_root = f"http://127.0.0.1:{self.web_port}"
        self.env = {
            **os.environ,
            "LUMAWEB_VAR_DIR": str(self.workdir),
            "DATABASE_URL": database_url or f"sqlite:///{self.workdir / 'bench.sqlite3'}",
            "LUMAAI_API_KEY": KEY,
            "LUMAAI_BASE_URL": f"{self.sim_root}/dream-machine/v1",
            "PUBLIC_BASE_URL": self.web_root,
            "MEDIA_ROOT": str(self.workdir / "media"),
            "Q_SYNC": "0",
            "LOG_LEVEL": "WARNING",
            **({"LUMA_AGENTS_API_KEY": AGENTS_KEY, "LUMA_AGENTS_BASE_URL": f"{self.sim_root}/agents",
                "LUMA_AGENTS_ASSET_HOSTS": self.sim_root.split("://", 1)[1]} if agents else {}),
            **{k: str(v) for k, v in settings.items()},
        }
        self.cluster: subprocess.Popen | None = None
        self.others: list[subprocess.Popen] = []

    def spawn(self, argv, name, new_session=False) -> subprocess.Popen:
        log = open(self.workdir / f"{name}.log", "ab")
        return subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=new_session)

    def start_simulator(self, *flags: str) -> None:
        self.others.append(self.spawn([PY, "-m", "generations.simulator", "--host", "127.0.0.1",
                                       "--port", str(self.sim_port), *flags], "simulator"))
        wait_http(f"{self.sim_root}/dream-machine/v1/ping", headers={"Authorization": f"Bearer {KEY}"})

    def migrate(self) -> None:
        self.manage("migrate", "--noinput")

    def start_web(self, workers: int = 2, threads: int = 4, extra_env: dict | None = None) -> None:
        if extra_env:
            self.env.update(extra_env)
        self.others.append(self.spawn([PY, "-m", "gunicorn", "lumaweb.wsgi", "--bind", f"127.0.0.1:{self.web_port}",
                                       "--workers", str(workers), "--threads", str(threads), "--log-level", "warning"],
                                      "web"))
        wait_http(f"{self.web_root}/accounts/login/")

    def start_cluster(self) -> None:
        self.cluster = self.spawn([PY, "manage.py", "qcluster"], "qcluster", new_session=True)

    def kill_cluster(self) -> None:
        os.killpg(self.cluster.pid, signal.SIGKILL)  # a crash: workers die mid-task
        self.cluster.wait()

    def manage(self, *args) -> str:
        return subprocess.run([PY, "manage.py", *args], cwd=ROOT, env=self.env, check=True,
                              capture_output=True, text=True).stdout

    def shell(self, code: str) -> str:
        return self.manage("shell", "-c", code)

    def shell_json(self, code: str, attempts: int = 1):
        """The last stdout line of a `manage.py shell -c` as JSON; with attempts > 1, a failing shell (a locked
        SQLite database, a killed connection) is retried after a pause instead of ending the run."""
        for attempt in range(attempts):
            try:
                return json.loads(self.shell(code).strip().splitlines()[-1])
            except (subprocess.CalledProcessError, ValueError, IndexError) as exc:
                if attempt == attempts - 1:
                    raise
                detail = exc.stderr.strip().splitlines()[-1:] if isinstance(exc, subprocess.CalledProcessError) else exc
                print(f"shell failed ({detail}); retrying", file=sys.stderr)
                time.sleep(2)

    def sim(self, method: str, path: str, **kwargs):
        response = requests.request(method, f"{self.sim_root}{path}", timeout=30, **kwargs)
        response.raise_for_status()
        return response.json() if response.content else None

    def stop(self) -> None:
        if self.cluster and self.cluster.poll() is None:
            self.cluster.send_signal(signal.SIGTERM)
            try:
                self.cluster.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.cluster.pid, signal.SIGKILL)
        for proc in self.others:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not self.keep:
            shutil.rmtree(self.workdir, ignore_errors=True)
        else:
            print(f"kept {self.workdir}")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()
