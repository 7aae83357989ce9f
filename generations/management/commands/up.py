"""Run all of lumaweb in one terminal: web server, job cluster and, without an API key, the Luma simulator.

Ctrl-C (or SIGTERM) stops every process cleanly.
"""

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError

SIMULATOR_KEY = "lumaweb-simulator-key"


class Command(BaseCommand):
    help = "Start the web server, a django-q2 cluster and (without LUMAAI_API_KEY) the Luma simulator."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument("--simulator-port", type=int, default=int(os.environ.get("SIMULATOR_PORT", "9011")))
        parser.add_argument("--web-workers", type=int, default=int(os.environ.get("WEB_WORKERS", "2")))
        parser.add_argument("--simulator-time-scale", type=float,
                            default=float(os.environ.get("SIMULATOR_TIME_SCALE", "1")),
                            help="speed of the simulator's clock (0.1: a generation takes about 2 s)")

    def handle(self, *args, **options):
        self.children: list[tuple[str, subprocess.Popen]] = []
        self.stopping = False
        env = os.environ.copy()

        call_command("migrate", interactive=False, verbosity=0)
        call_command("collectstatic", interactive=False, verbosity=0)
        self.ensure_admin()

        address = f"{options['host']}:{options['port']}"
        if "PUBLIC_BASE_URL" not in os.environ:
            # Callbacks and keyframe URLs must point at this server, whatever port it was given.
            reachable = "127.0.0.1" if options["host"] in ("0.0.0.0", "::", "") else options["host"]
            env["PUBLIC_BASE_URL"] = f"http://{reachable}:{options['port']}"
        if not settings.LUMAAI_API_KEY:
            base_url = f"http://127.0.0.1:{options['simulator_port']}/dream-machine/v1"
            self.start("simulator", [sys.executable, "-m", "generations.simulator",
                                     "--host", "127.0.0.1", "--port", str(options["simulator_port"]),
                                     "--time-scale", str(options["simulator_time_scale"])], env)
            self.wait_for(f"{base_url}/ping", headers={"Authorization": f"Bearer {SIMULATOR_KEY}"})
            env.update(LUMAAI_API_KEY=SIMULATOR_KEY, LUMA_BASE_URL=base_url)
            self.stdout.write(f"No LUMAAI_API_KEY set: using the Luma simulator at {base_url}")
        else:
            self.stdout.write(f"Using Luma at {settings.LUMA_BASE_URL}")

        # The cluster gets its own session: a terminal's Ctrl-C must not reach its workers directly,
        # because django-q2 can deadlock when the whole group is signalled (platform notes, pitfall 1).
        self.start("jobs", [sys.executable, "manage.py", "qcluster"], env, new_session=True)
        self.start("web", [sys.executable, "-m", "gunicorn", "lumaweb.wsgi", "--bind", address,
                           "--workers", str(options["web_workers"]), "--threads", "4",
                           "--access-logfile", "-", "--graceful-timeout", "5"], env)
        self.wait_for(f"http://{address}/accounts/login/")
        self.stdout.write(self.style.SUCCESS(f"lumaweb is up: http://{address}/  (Ctrl-C stops everything)"))

        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: self.request_stop())
        try:
            while not self.stopping:
                for name, proc in self.children:
                    if proc.poll() is not None:
                        self.stderr.write(f"{name} exited with code {proc.returncode}; stopping the rest.")
                        self.stopping = True
                time.sleep(0.5)
        finally:
            self.stop_all()

    def start(self, name: str, argv: list[str], env: dict, new_session: bool = False) -> None:
        proc = subprocess.Popen(argv, cwd=settings.BASE_DIR, env=env, start_new_session=new_session)
        self.children.append((name, proc))

    def wait_for(self, url: str, headers: dict | None = None, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                requests.get(url, headers=headers, timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.2)
        self.stop_all()
        raise CommandError(f"{url} did not answer within {timeout:.0f} s")

    def request_stop(self) -> None:
        self.stopping = True

    def stop_all(self) -> None:
        for _name, proc in reversed(self.children):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # the main PID only, never the group
        for name, proc in reversed(self.children):
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.stderr.write(f"{name} did not stop in time; killing it.")
                if name == "jobs":
                    os.killpg(proc.pid, signal.SIGKILL)  # also the workers it would orphan
                else:
                    proc.kill()
                proc.wait()
        self.children.clear()

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
