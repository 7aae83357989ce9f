"""The web server as `manage.py up` runs it (the same command line): slow clients, forwarded headers, log lines,
and two sites on one machine."""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests

from generations.management.commands.up import HEADER_READ_TIMEOUT_MS, web_command
from tests.plugins.simulator import free_port

ROOT = Path(__file__).resolve().parents[1]
pytestmark = [pytest.mark.no_db, pytest.mark.timeout(90)]


class Site:
    def __init__(self, var: Path, log: Path, home: Path, **env: str):
        self.port, self.var, self.log = free_port(), var, log
        self.url = f"http://127.0.0.1:{self.port}"
        environ = {k: v for k, v in os.environ.items()
                   if k not in ("DATABASE_URL", "REDIS_URL", "FORWARDED_ALLOW_IPS", "SECURE_COOKIES", "XDG_RUNTIME_DIR",
                                "DJANGO_SETTINGS_MODULE", "MEDIA_ROOT", "STATIC_ROOT")}
        self.env = {**environ, "LUMAWEB_VAR_DIR": str(var), "HOME": str(home), **env}
        with open(log, "ab") as out:
            self.process = subprocess.Popen(web_command("127.0.0.1", self.port, var), cwd=ROOT, env=self.env,
                                            stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.output()
            try:
                requests.get(f"{self.url}/accounts/login/", timeout=2)
                return
            except requests.RequestException:
                time.sleep(0.1)
        self.stop()
        pytest.fail(f"the web server did not answer:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                pass
        try:
            os.killpg(self.process.pid, signal.SIGKILL)  # workers, if the main process left any
        except ProcessLookupError:
            pass


def prepared_var(path: Path) -> Path:
    """A var dir with the database migrated and static files collected, as `up` leaves it before starting the server."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE", "STATIC_ROOT")}
    env["LUMAWEB_VAR_DIR"] = str(path)
    for command in (["migrate"], ["collectstatic", "--noinput"]):
        subprocess.run([sys.executable, "manage.py", *command, "-v0"], cwd=ROOT, env=env, check=True)
    return path


@pytest.fixture(scope="module")
def var_template(tmp_path_factory):
    return prepared_var(tmp_path_factory.mktemp("var"))


@pytest.fixture(scope="module")
def site(var_template, tmp_path_factory):
    """The default configuration behind HTTPS (SECURE_COOKIES=1) with no proxy configured."""
    base = tmp_path_factory.mktemp("site")
    running = Site(var_template, base / "web.log", base, SECURE_COOKIES="1")
    yield running
    running.stop()


def csrf_post(site: Site, path: str, **headers: str) -> requests.Response:
    """A form post with a valid CSRF cookie and token and no Referer: Django refuses that (403) only over HTTPS."""
    token = requests.get(f"{site.url}/accounts/login/", timeout=5).cookies["csrftoken"]
    return requests.post(f"{site.url}{path}", allow_redirects=False, timeout=5,
                         headers={"Cookie": f"csrftoken={token}", "X-CSRFToken": token, **headers})


def test_sixty_clients_trickling_headers_neither_slow_the_login_page_nor_keep_their_sockets(site):
    trickling = []
    for _ in range(60):
        sock = socket.create_connection(("127.0.0.1", site.port), timeout=5)
        sock.sendall(b"GET /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        trickling.append(sock)
    opened = time.monotonic()
    stop = threading.Event()

    def trickle():
        while not stop.wait(0.5):
            for sock in trickling:
                try:
                    sock.send(b"X")
                except OSError:
                    pass  # closed by the server: what we want

    sender = threading.Thread(target=trickle, daemon=True)
    sender.start()
    try:
        time.sleep(1)
        for _ in range(3):
            started = time.monotonic()
            answer = requests.get(f"{site.url}/accounts/login/", timeout=10)
            assert answer.status_code == 200 and "Log in" in answer.text
            assert time.monotonic() - started < 2

        def closed_by_server(sock: socket.socket) -> bool:
            sock.settimeout(max(0.1, opened + HEADER_READ_TIMEOUT_MS / 1000 + 3 - time.monotonic()))
            try:
                while sock.recv(4096):
                    pass  # a 408 answer, if any, then the end of the stream
                return True
            except ConnectionResetError:
                return True
            except TimeoutError:
                return False

        assert sum(closed_by_server(sock) for sock in trickling) == 60
        assert time.monotonic() - opened < HEADER_READ_TIMEOUT_MS / 1000 + 3
    finally:
        stop.set()
        sender.join()
        for sock in trickling:
            sock.close()


def test_x_forwarded_proto_from_a_client_that_is_not_a_configured_proxy_is_ignored(site):
    plain = csrf_post(site, "/create/")
    forged = csrf_post(site, "/create/", **{"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"})
    # Over plain HTTP the post passes the CSRF check and meets the login wall (or an HTTPS redirect); a request
    # believed to be HTTPS would be refused for its missing Referer.
    assert plain.status_code in (301, 302)
    assert forged.status_code == plain.status_code


def test_behind_a_configured_proxy_its_x_forwarded_proto_counts_and_nobody_elses(var_template, tmp_path):
    proxied = Site(var_template, tmp_path / "proxied.log", tmp_path, SECURE_COOKIES="1",
                   FORWARDED_ALLOW_IPS="127.0.0.1")
    elsewhere = Site(var_template, tmp_path / "elsewhere.log", tmp_path, SECURE_COOKIES="1",
                     FORWARDED_ALLOW_IPS="192.0.2.0/24")
    try:
        refused = csrf_post(proxied, "/create/", **{"X-Forwarded-Proto": "https"})
        assert refused.status_code == 403 and "CSRF verification failed" in refused.text
        assert csrf_post(elsewhere, "/create/", **{"X-Forwarded-Proto": "https"}).status_code in (301, 302)
    finally:
        proxied.stop()
        elsewhere.stop()


def test_callback_tokens_never_reach_the_server_output(site):
    token = "tok-" + "s3cr3t" * 6
    answer = requests.post(f"{site.url}/webhooks/luma/{token}/", json={"id": "x", "state": "completed"}, timeout=5)
    assert answer.status_code == 404
    time.sleep(0.3)
    output = site.output()
    assert token not in output
    assert re.search(r'"POST /webhooks/luma/\S*/ HTTP/1.1" 404', output)  # the request is still logged


def test_two_sites_run_side_by_side_on_one_machine_without_a_shared_control_socket(var_template, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    one = Site(Path(shutil.copytree(var_template, tmp_path / "one")), tmp_path / "one.log", home)
    two = Site(Path(shutil.copytree(var_template, tmp_path / "two")), tmp_path / "two.log", home)
    try:
        assert requests.get(f"{one.url}/accounts/login/", timeout=5).status_code == 200
        assert requests.get(f"{two.url}/accounts/login/", timeout=5).status_code == 200
        assert list(home.iterdir()) == []  # nothing in a per-user place two instances would share
        one.stop()
        assert requests.get(f"{two.url}/accounts/login/", timeout=5).status_code == 200
    finally:
        one.stop()
        two.stop()
