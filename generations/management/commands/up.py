"""Run all of lumaweb in one terminal: web server, job cluster and, without an API key, the Luma simulator.

A child that dies is restarted (with a back-off; one that keeps dying stops everything). Ctrl-C (or SIGTERM)
stops every process cleanly.
"""

import ctypes
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

SIMULATOR_KEY = "lumaweb-simulator-key"
# The Agents API's keys start with "luma-api-" (the simulator checks the shape, as Luma does).
SIMULATOR_AGENTS_KEY = "luma-api-lumaweb-simulator"
# A client gets this long to send its request headers; a slow-headers attack then holds no thread at all (granian
# reads headers in Rust) and each of its sockets only for this long.
HEADER_READ_TIMEOUT_MS = 5000
# Threads per web worker. Slow clients cost no thread until their headers are in, but a playing video holds one for
# as long as the browser takes to read it (WSGI streams from a thread): 5 per worker froze the site at 10 open
# players, 32 stayed responsive with 40. granian warns about more threads than 2 x cores + 1, a rule for CPU-bound
# apps. Each thread may keep a database connection (CONN_MAX_AGE), so workers x threads must fit PostgreSQL's limit.
WEB_THREADS = 32
DEATHS_PER_MINUTE = 5  # a child that dies this often within a minute is broken, not unlucky: stop everything
MAX_BACKOFF = 8.0


def web_command(host: str, port: int, var_dir: Path, workers: int = 2, threads: int = WEB_THREADS) -> list[str]:
    """granian's command line for the site (its log config written into var_dir): WSGI, so Django stays synchronous
    and downloads stream from disk; a header deadline; no control socket or other shared path. granian passes
    X-Forwarded-* through untouched: Django's forwarded_headers_middleware trusts them only from FORWARDED_ALLOW_IPS."""
    log_config = Path(var_dir) / "web-logging.json"
    log_config.write_text(json.dumps(_web_logging()))
    return [sys.executable, "-m", "granian", "--interface", "wsgi", "--no-ws",
            "--host", host, "--port", str(port), "--workers", str(workers), "--blocking-threads", str(threads),
            "--http1-header-read-timeout", str(HEADER_READ_TIMEOUT_MS),
            "--respawn-failed-workers", "--workers-kill-timeout", "5",
            "--access-log", "--log-config", str(log_config),
            "lumaweb.wsgi:application"]


def _web_logging() -> dict:
    """granian's own logging setup plus the filter that cuts callback and keyframe tokens out of every line (the
    access log shows each request's path)."""
    stream = {"class": "logging.StreamHandler", "stream": "ext://sys.stdout", "filters": ["no_tokens"]}
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"no_tokens": {"()": "generations.logs.RedactTokens"}},
        "formatters": {"generic": {"format": "[%(levelname)s] %(message)s"}, "access": {"format": "%(message)s"}},
        "handlers": {"console": {**stream, "formatter": "generic"}, "access": {**stream, "formatter": "access"}},
        "loggers": {"_granian": {"handlers": ["console"], "level": "INFO", "propagate": False},
                    "granian.access": {"handlers": ["access"], "level": "INFO", "propagate": False}},
    }


def _die_with_parent() -> None:
    """Runs in the child before exec: if `up` itself is killed, its children get SIGTERM instead of living on."""
    PR_SET_PDEATHSIG = 1
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


@dataclass
class Child:
    name: str
    argv: list[str]
    env: dict
    proc: subprocess.Popen | None = None
    restart_at: float = 0.0
    restarts: int = 0
    deaths: list[float] = field(default_factory=list)  # monotonic times of deaths within the last minute


class Command(BaseCommand):
    help = "Start the web server, a django-q2 cluster and (without any Luma key) the Luma simulator for both APIs."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--simulator-port", type=int, default=int(os.environ.get("SIMULATOR_PORT", "9011")))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_WORKERS", "2")))
        parser.add_argument("--web-threads", type=int, default=int(os.environ.get("WEB_THREADS", WEB_THREADS)),
                            help="requests each web worker handles at once")
        parser.add_argument("--simulator-time-scale", type=float,
                            default=float(os.environ.get("SIMULATOR_TIME_SCALE", "1")),
                            help="speed of the simulator's clock (0.1: a generation takes about 2 s)")

    def handle(self, *args, **options):
        self.children: list[Child] = []
        self.stopping = False
        # Every child runs in its own session, so a terminal's Ctrl-C reaches only this process, which stops them
        # in order; django-q2 can deadlock when its whole group is signalled (platform notes, pitfall 1).
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.request_stop())
        try:
            self.start_all(options)
            self.supervise()
        finally:
            self.stop_all()

    def start_all(self, options: dict) -> None:
        env = os.environ.copy()
        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        self.ensure_admin()

        var_dir = Path(settings.VAR_DIR)
        address = f"{options['host']}:{options['port']}"
        if "PUBLIC_BASE_URL" not in os.environ:
            # Callbacks and keyframe URLs must point at this server, whatever port it was given.
            reachable = "127.0.0.1" if options["host"] in ("0.0.0.0", "::", "") else options["host"]
            env["PUBLIC_BASE_URL"] = f"http://{reachable}:{options['port']}"
        if not settings.LUMAAI_API_KEY and not settings.LUMA_AGENTS_API_KEY:
            # Neither key: the simulator serves both of Luma's APIs, Dream Machine v1 and the Agents API.
            root = f"http://127.0.0.1:{options['simulator_port']}"
            base_url, agents_url = f"{root}/dream-machine/v1", f"{root}/agents"
            # The state file keeps the simulator's generations (and their clocks) across restarts of the stack.
            simulator = self.start("simulator", [
                sys.executable, "-m", "generations.simulator", "--host", "127.0.0.1",
                "--port", str(options["simulator_port"]), "--time-scale", str(options["simulator_time_scale"]),
                "--state-file", str(var_dir / "simulator-state.json")], env)
            self.wait_for(simulator, f"{base_url}/ping", headers={"Authorization": f"Bearer {SIMULATOR_KEY}"})
            if self.stopping:
                return
            # LUMAAI_BASE_URL, not LUMA_BASE_URL: Luma's Agents SDK reads the latter for its own host.
            env.pop("LUMA_BASE_URL", None)
            # The site's first guesses of how long things take (ETAs, the Agents API's first poll) follow the
            # simulator's clock.
            env.update(LUMAAI_API_KEY=SIMULATOR_KEY, LUMAAI_BASE_URL=base_url,
                       LUMA_AGENTS_API_KEY=SIMULATOR_AGENTS_KEY, LUMA_AGENTS_BASE_URL=agents_url,
                       LUMAWEB_LUMA_TIME_SCALE=str(options["simulator_time_scale"]))
            self.stdout.write(f"No Luma key set: using the Luma simulator at {base_url} (Dream Machine) and "
                              f"{agents_url} (Agents API)")
        else:
            for name, key, url in (("Dream Machine", settings.LUMAAI_API_KEY, settings.LUMA_BASE_URL),
                                   ("the Agents API", settings.LUMA_AGENTS_API_KEY, settings.LUMA_AGENTS_BASE_URL)):
                self.stdout.write(f"Using {name} at {url}" if key else f"No key for {name}: its models are not offered")

        self.start("jobs", [sys.executable, "manage.py", "qcluster"], env)
        web = self.start("web", web_command(options["host"], options["port"], var_dir, options["web_workers"],
                                           options["web_threads"]), env)
        self.wait_for(web, f"http://{address}/accounts/login/")
        if self.stopping:
            return
        self.stdout.write(self.style.SUCCESS(f"lumaweb is up: http://{address}/  (Ctrl-C stops everything)"))

    def supervise(self) -> None:
        """Restart any child that exits until Ctrl-C; give up on one that dies too often."""
        while not self.stopping:
            now = time.monotonic()
            for child in self.children:
                if child.proc is None:
                    if now >= child.restart_at:
                        self.launch(child)
                elif child.proc.poll() is not None:
                    self.schedule_restart(child, now)
            time.sleep(0.2)

    def schedule_restart(self, child: Child, now: float) -> None:
        code = child.proc.returncode
        self.kill_group(child)  # what it leaves behind (job or web workers) would hold the port or take tasks
        child.proc = None
        child.deaths = [t for t in child.deaths if t > now - 60] + [now]
        if len(child.deaths) >= DEATHS_PER_MINUTE:
            self.stopping = True
            raise CommandError(f"{child.name} exited with code {code}, {len(child.deaths)} times within a minute; "
                               "stopping everything (its output above says why).")
        child.restarts += 1
        delay = min(0.5 * 2 ** (len(child.deaths) - 1), MAX_BACKOFF)
        child.restart_at = now + delay
        self.stderr.write(f"{child.name} exited with code {code}; restarting it (restart {child.restarts}, "
                          f"in {delay:g} s)")

    def start(self, name: str, argv: list[str], env: dict) -> Child:
        child = Child(name, argv, env)
        self.children.append(child)
        self.launch(child)
        return child

    def launch(self, child: Child) -> None:
        child.proc = subprocess.Popen(child.argv, cwd=settings.BASE_DIR, env=child.env, start_new_session=True,
                                      preexec_fn=_die_with_parent if sys.platform == "linux" else None)

    def wait_for(self, child: Child, url: str, headers: dict | None = None, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping:
            if child.proc.poll() is not None:
                raise CommandError(f"{child.name} exited with code {child.proc.returncode} while starting")
            try:
                requests.get(url, headers=headers, timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.2)
        if not self.stopping:
            raise CommandError(f"{url} did not answer within {timeout:.0f} s")

    def request_stop(self) -> None:
        self.stopping = True

    def stop_all(self) -> None:
        running = [c for c in reversed(self.children) if c.proc is not None]
        for child in running:
            if child.proc.poll() is None:
                child.proc.send_signal(signal.SIGTERM)  # the main PID only: it stops its own workers
        for child in running:
            try:
                child.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{child.name} did not stop in time; killing it.")
                child.proc.kill()
                child.proc.wait()
            self.kill_group(child)
        self.children.clear()

    @staticmethod
    def kill_group(child: Child) -> None:
        """SIGKILL what is left of a child's session once its main process is gone (orphaned workers)."""
        try:
            os.killpg(child.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass

    def ensure_admin(self) -> None:
        User = get_user_model()
        password_file = Path(settings.VAR_DIR) / "initial_admin_password.txt"
        if User.objects.filter(is_superuser=True).exists():
            if password_file.exists():
                self.stdout.write(f"Log in as 'admin'; its first password is in {password_file}.")
            return
        password = secrets.token_urlsafe(12)
        User.objects.create_superuser("admin", "", password)
        password_file.write_text(password + "\n")
        password_file.chmod(0o600)
        self.stdout.write(self.style.WARNING(
            f"Created the first admin account. Log in as 'admin' with password {password}\n"
            f"(also saved in {password_file}; change it in the admin and add your team there)."
        ))
