"""Pytest plugin: the Luma simulator as a subprocess for the whole session, reset before each test that uses it.

- `luma_sim_server` (session): `python -m generations.simulator` on a free port, fast clock, seed 1.
- `luma_sim` (function): resets the simulator and returns a `LumaSim` helper (base_url, api_key, faults, finish, ...).
Needs only requests: no Django, no database.
"""

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

ROOT = Path(__file__).resolve().parents[2]
API_KEY = "luma-sim-test-key"
# A generation takes about a second (3 s queued + 20 s dreaming, x 0.05), so tests see every state quickly.
TIME_SCALE = os.environ.get("LUMA_SIM_TIME_SCALE", "0.05")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class SimProcess:
    process: subprocess.Popen
    root: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def start_simulator(*flags: str, log_path: Path, port: int | None = None, timeout: float = 20) -> SimProcess:
    """Start a simulator subprocess and wait until it answers /ping."""
    port = port or free_port()
    command = [sys.executable, "-m", "generations.simulator"]
    if renderer := os.environ.get("LUMAWEB_TEST_SIM_RENDERER"):  # "old" or "new": bench/simulator_media.py's timing
        command = [sys.executable, str(ROOT / "bench" / "simulator_media.py"), "--serve", renderer, "--"]
    with open(log_path, "ab") as handle:
        process = subprocess.Popen(
            [*command, "--host", "127.0.0.1", "--port", str(port), *flags],
            cwd=ROOT, stdout=handle, stderr=subprocess.STDOUT,
        )
    root = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the simulator exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            requests.get(f"{root}/_sim/config", timeout=1)
            return SimProcess(process, root, log_path)
        except requests.ConnectionError:
            time.sleep(0.05)
    stop_simulator(SimProcess(process, root, log_path))
    raise RuntimeError(f"the simulator did not answer within {timeout} s:\n{log_path.read_text()}")


def stop_simulator(sim: SimProcess) -> None:
    if sim.process.poll() is None:
        sim.process.send_signal(signal.SIGTERM)
        try:
            sim.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            sim.process.kill()
            sim.process.wait()


class LumaSim:
    """Test-side handle on a running simulator: Luma's API at base_url, the /_sim API through small methods."""

    def __init__(self, root: str, api_key: str = API_KEY, pid: int | None = None):
        self.root = root
        self.base_url = f"{root}/dream-machine/v1"
        self.api_key = api_key
        self.pid = pid
        self.headers = {"Authorization": f"Bearer {api_key}"}

    def _sim(self, method: str, path: str, **kwargs):
        answer = requests.request(method, f"{self.root}/_sim{path}", timeout=30, **kwargs)
        answer.raise_for_status()
        return answer.json()

    def reset(self) -> dict:
        return self._sim("POST", "/reset")

    def faults(self, **changes) -> dict:
        """Switch faults on/off, e.g. faults(drop_callbacks=1.0, burst_429=2); returns all current faults."""
        return self._sim("POST", "/faults", json=changes)

    def config(self, **changes) -> dict:
        """Change settings, e.g. config(asset_bytes=3_000_000, time_scale=0.01); returns all current settings."""
        return self._sim("POST", "/config", json=changes)

    def generations(self) -> list[dict]:
        return self._sim("GET", "/generations")["generations"]

    def generation(self, generation_id: str) -> dict:
        return self._sim("GET", f"/generations/{generation_id}")

    def creates(self, contains: str = "") -> dict:
        """{"count", "ids", "attempts"} of creates whose callback_url contains the string."""
        return self._sim("GET", "/creates", params={"callback_url_contains": contains})

    def stats(self) -> dict:
        return self._sim("GET", "/stats")

    def callbacks(self, generation_id: str | None = None) -> list[dict]:
        params = {"generation_id": generation_id} if generation_id else {}
        return self._sim("GET", "/callbacks", params=params)["callbacks"]

    def finish(self, generation_id: str, state: str = "completed", reason: str | None = None) -> dict:
        """Force an outcome now; returns the Generation JSON as Luma would."""
        body = {"state": state}
        if reason is not None:
            body["failure_reason"] = reason
        return self._sim("POST", f"/generations/{generation_id}/finish", json=body)

    def get(self, generation_id: str) -> dict:
        answer = requests.get(f"{self.base_url}/generations/{generation_id}", headers=self.headers, timeout=10)
        answer.raise_for_status()
        return answer.json()

    def create(self, path: str = "/generations/video", **body) -> dict:
        body.setdefault("model", "photon-1" if path.startswith("/generations/image") else "ray-2")
        answer = requests.post(f"{self.base_url}{path}", json=body, headers=self.headers, timeout=10)
        answer.raise_for_status()
        return answer.json()

    def wait_for_state(self, generation_id: str, state: str, timeout: float = 10) -> dict:
        """Poll (through /_sim, so API counters stay untouched) until the generation is in state; fail otherwise."""
        deadline = time.monotonic() + timeout
        seen = None
        while time.monotonic() < deadline:
            seen = self.generation(generation_id)
            if seen["state"] == state:
                return seen["generation"]
            if seen["state"] in ("completed", "failed") and state not in ("completed", "failed"):
                break
            time.sleep(0.02)
        pytest.fail(f"generation {generation_id} is {seen and seen['state']!r}, expected {state!r} within {timeout} s")


@pytest.fixture(scope="session")
def luma_sim_server(tmp_path_factory):
    log_path = tmp_path_factory.mktemp("luma-sim") / "simulator.log"
    sim = start_simulator("--time-scale", TIME_SCALE, "--seed", "1", log_path=log_path)
    yield sim
    stop_simulator(sim)


@pytest.fixture
def luma_sim(luma_sim_server) -> LumaSim:
    if luma_sim_server.process.poll() is not None:
        pytest.fail(f"the simulator died (exit {luma_sim_server.process.returncode}):\n{luma_sim_server.log()}")
    sim = LumaSim(luma_sim_server.root, pid=luma_sim_server.process.pid)
    sim.reset()
    return sim
