"""Callback delivery for the simulator: Luma's POST of the Generation JSON, its retry policy, and callback faults.

Each generation's callbacks go out in order from their own background thread, so a slow receiver never blocks
the API or other generations. Only loopback receivers are called unless remote callbacks are allowed.
"""

import json
import logging
import threading
import time
from collections import deque

import requests

from .loopback import is_loopback_url, local_session

log = logging.getLogger("lumasim.callbacks")
LOG_LIMIT = 20000  # remembered deliveries for /_sim/callbacks; a long chaos run must not grow without bound


class Dispatcher:
    """Queues callbacks per generation and delivers them with Luma's policy: 200 is success, else retry 3x 100 ms apart."""

    def __init__(self, faults_of, rng, rng_lock, allow_remote: bool, retries: int = 3, timeout: float = 5.0,
                 retry_delay: float = 0.1):
        self.faults_of = faults_of  # callable: the engine swaps its Faults object on reset
        self.rng, self.rng_lock = rng, rng_lock
        self.allow_remote = allow_remote
        self.retries, self.timeout, self.retry_delay = retries, timeout, retry_delay
        self.lock = threading.Lock()
        self.epoch = 0
        self.queues: dict[str, deque] = {}
        self.running: set[str] = set()
        self.held: dict[str, tuple] = {}
        self.counters = self._zero()
        self.log: deque = deque(maxlen=LOG_LIMIT)

    @staticmethod
    def _zero() -> dict:
        return {"queued": 0, "attempted": 0, "delivered": 0, "failed": 0, "dropped": 0, "duplicated": 0,
                "reordered": 0, "skipped_remote": 0}

    def reset(self) -> None:
        """Forget everything; deliveries still running notice the new epoch and stop."""
        with self.lock:
            self.epoch += 1
            self.queues.clear()
            self.held.clear()
            self.running.clear()
            self.counters = self._zero()
            self.log.clear()

    def _fires(self, name: str) -> bool:
        with self.rng_lock:
            return self.faults_of().fires(name, self.rng)

    def send(self, generation_id: str, url: str, payload: dict, terminal: bool) -> None:
        """Queue the Generation JSON for url; never blocks on the network."""
        body = json.dumps(payload).encode()
        item = (url, body, payload["state"])
        with self.lock:
            if not self.allow_remote and not is_loopback_url(url):
                self.counters["skipped_remote"] += 1
                self._record(generation_id, item, "skipped_remote", [])
                return
            if not terminal and self._fires("reorder_callbacks"):
                self.held[generation_id] = item  # released after the final state's callback
                self.counters["reordered"] += 1
                return
            items = [item]
            if self._fires("duplicate_callbacks"):
                items.append(item)
                self.counters["duplicated"] += 1
            if terminal and generation_id in self.held:
                items.append(self.held.pop(generation_id))
            queue = self.queues.setdefault(generation_id, deque())
            for one in items:
                if self._fires("drop_callbacks"):
                    self.counters["dropped"] += 1
                    self._record(generation_id, one, "dropped", [])
                    continue
                queue.append(one)
                self.counters["queued"] += 1
            if queue and generation_id not in self.running:
                self.running.add(generation_id)
                threading.Thread(target=self._drain, args=(generation_id, self.epoch), daemon=True,
                                 name=f"callback-{generation_id[:8]}").start()

    def _drain(self, generation_id: str, epoch: int) -> None:
        session = local_session()
        try:
            while True:
                with self.lock:
                    queue = self.queues.get(generation_id)
                    if epoch != self.epoch or not queue:
                        if epoch == self.epoch:
                            self.running.discard(generation_id)
                            self.queues.pop(generation_id, None)
                        return
                    item = queue.popleft()
                delay = self.faults_of().seconds("delay_callbacks")
                if delay:
                    time.sleep(delay)
                self._deliver(generation_id, item, epoch, session)
        finally:
            session.close()

    def _deliver(self, generation_id: str, item: tuple, epoch: int, session: requests.Session) -> None:
        url, body, _state = item
        outcomes = []
        for attempt in range(1 + self.retries):
            if attempt:
                time.sleep(self.retry_delay)
            with self.lock:
                if epoch != self.epoch:
                    return
                self.counters["attempted"] += 1
            try:
                answer = session.post(url, data=body, headers={"Content-Type": "application/json"},
                                      timeout=self.timeout, allow_redirects=False)
                outcomes.append(answer.status_code)
                answer.close()
                if answer.status_code == 200:
                    break
            except requests.RequestException as exc:
                outcomes.append(type(exc).__name__)
        with self.lock:
            if epoch != self.epoch:
                return
            ok = outcomes and outcomes[-1] == 200
            self.counters["delivered" if ok else "failed"] += 1
            self._record(generation_id, item, "delivered" if ok else "failed", outcomes)
        if not ok:
            log.info("callback for %s gave up after %d attempts: %s", generation_id, len(outcomes), outcomes)

    def _record(self, generation_id: str, item: tuple, outcome: str, attempts: list) -> None:
        url, _body, state = item
        self.log.append({"generation_id": generation_id, "state": state, "url": url, "outcome": outcome,
                         "attempts": attempts, "at": time.time()})

    def snapshot(self, generation_id: str | None = None) -> dict:
        with self.lock:
            entries = [e for e in self.log if generation_id is None or e["generation_id"] == generation_id]
            return {"counters": dict(self.counters), "callbacks": entries,
                    "pending": sum(len(q) for q in self.queues.values()), "held": len(self.held)}

    def stats(self) -> dict:
        with self.lock:
            return dict(self.counters)
