"""The simulator's state file (--state-file): its generations as JSON, rewritten soon after every change and on
shutdown, so a restarted simulator still knows every id it handed out; a SIGKILL loses at most SAVE_INTERVAL.
The Dream Machine engine owns the file; the Agents engine keeps its state in it under "agents" (add_part).
"""

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

SAVE_INTERVAL = 0.2  # seconds between two writes while changes keep coming
log = logging.getLogger("lumasim")


class StateFile:
    """Writes snapshot() and its parts to path atomically, from a background thread woken by changed()."""

    def __init__(self, path: str, snapshot: Callable[[], dict]):
        self.path = Path(path)
        self.snapshot = snapshot
        self.parts: dict[str, Callable[[], dict]] = {}  # other engines' snapshots, saved under their names
        self.saved: dict = {}  # what read() found
        self.pending = threading.Event()
        self.write_lock = threading.Lock()

    def read(self) -> dict | None:
        """The saved state, or None when there is none (a file that is not valid JSON is set aside, not fatal)."""
        if not self.path.exists():
            return None
        try:
            self.saved = json.loads(self.path.read_text())
            return self.saved
        except (ValueError, UnicodeDecodeError):
            aside = self.path.with_name(self.path.name + ".unreadable")
            os.replace(self.path, aside)
            log.warning("state file %s is not valid JSON; moved it to %s and started empty", self.path, aside)
            return None

    def add_part(self, name: str, load: Callable[[dict], None], snapshot: Callable[[], dict]) -> None:
        """Keep another engine's state in this file under name: load what was saved there, then save it along."""
        with self.write_lock:
            if (saved := self.saved.get(name)) is not None:
                load(saved)
            self.parts[name] = snapshot

    def start(self) -> None:
        threading.Thread(target=self._run, daemon=True, name="state-file").start()

    def changed(self) -> None:
        self.pending.set()

    def write(self) -> None:
        # Snapshot and write under one lock: a slower writer must never replace a newer file with an older state.
        with self.write_lock:
            data = self.snapshot()
            for name, snapshot in self.parts.items():
                data[name] = snapshot()
            # A part whose engine has not joined yet (a write can come first) keeps what was saved, not nothing.
            for name in self.saved.keys() - data.keys():
                data[name] = self.saved[name]
            tmp = self.path.with_name(self.path.name + ".tmp")
            tmp.write_text(json.dumps(data))
            os.replace(tmp, self.path)

    def _run(self) -> None:
        while True:
            self.pending.wait()
            self.pending.clear()
            try:
                self.write()
            except OSError:
                log.exception("could not write the state file %s", self.path)
            time.sleep(SAVE_INTERVAL)  # a burst of changes becomes a few writes, not one per change
