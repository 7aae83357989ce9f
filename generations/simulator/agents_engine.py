"""State of the simulator's Agents API: generations per key (queued -> processing -> completed/failed with a
failure_code), references resolved at submit time (agents_references), per-key limits (30 RPM sliding window, 10
concurrent), signed output and upload URLs, faults and the numbers /_sim/agents reports. It shares only the process
with the v1 engine, and its state file (--state-file), where it keeps its generations, files and URL secret under
"agents".

Simulator-only failure marker: a prompt containing "[sim-fail]" or "[sim-fail:<failure_code>]" (for example
"[sim-fail:content_moderated]") is accepted, runs its course and ends failed with that code (generation_failed
without one) and Luma's reason text. An unknown code answers 400, so a typo in a test is loud.
"""

import hashlib
import heapq
import hmac
import itertools
import math
import os
import random
import re
import threading
import time
import uuid
from collections import Counter, deque
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime

from . import agents_media, media
from .agents_config import AgentsConfig, AgentsFaults
from .agents_files import FileStore
from .agents_media import Output
from .agents_references import References, Resolved
from .agents_validation import IMAGE_RATIOS, VIDEO_RATIOS, CreateRequest, parse
from .persistence import StateFile
from .validation import ApiError

TERMINAL = ("completed", "failed")
FAILURE_REASONS = {
    "content_moderated": "Generation output was flagged by our content moderation system.",
    "generation_failed": "Generation failed",
    "budget_exhausted": "Insufficient credits to complete this generation.",
    "output_not_found": "Output artifacts not found",
    "image_too_large": "An input image is larger than the size limit.",
    "unsupported_format": "An input media file is in an unsupported format.",
    "corrupt_input": "An input could not be decoded.",
    "invalid_request": "The request was found invalid during processing.",
    "rate_limited": "Rate limited upstream; try again later.",
}
FAIL_MARKER = re.compile(r"\[sim-fail(?::([a-z_]*))?\]")
EDIT_MAX_SECONDS = {"video_edit": 18.0, "video_reframe": 30.0}
SLOT_LIFETIME = 3600.0  # an active job is pruned from the concurrency count after an hour (DOC-rl)
_tie = itertools.count()

@dataclass
class AgentGen:
    id: str
    seq: int
    key: str
    model: str
    type: str
    request: dict
    created_at: str
    outputs: list
    width: int
    height: int
    seconds: float
    hdr: bool
    title: str
    caption: str
    user_id: str | None
    queued_for: float
    processing_for: float
    planned_failure: str | None = None
    state: str = "queued"
    failure_code: str | None = None
    failure_reason: str | None = None
    slot_since: float = 0.0  # wall-clock time it took a concurrency slot
    due_at: float = 0.0  # wall-clock time of its next step (start or finish): a restart keeps the clock going

    @property
    def look(self) -> media.Look:
        return media.Look(self.id, self.seq, self.title, self.caption)


def title_of(request: CreateRequest, extend: str | None) -> str:
    """The kind's name as a person would say it, drawn on the output (media.py picks the pattern by its start)."""
    video = request.video
    if request.type == "video":
        if extend:
            name = extend
        elif video.get("keyframes"):
            name = "Image to video (keyframes)"
        elif video.get("start_frame") or video.get("end_frame"):
            name = "Image to video"
        else:
            name = "Text to video"
        return name + (" (loop)" if video.get("loop") else "") + (" HDR" if video.get("hdr") else "")
    return {"image": "Image", "image_edit": "Modify image", "layering": "Layering",
            "video_edit": "Modify video", "video_reframe": f"Reframe video to {request.aspect_ratio}"}[request.type]


def iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class AgentsEngine:
    def __init__(self, config: AgentsConfig, faults: AgentsFaults, seed: int | None, root_url: str,
                 time_scale=lambda: 1.0, state: StateFile | None = None):
        self.start_config, self.start_faults, self.seed = config.copy(), faults.copy(), seed
        self.root_url = root_url.rstrip("/")
        self.time_scale = time_scale  # read on every use: POST /_sim/config time_scale speeds up both APIs
        self.lock = threading.RLock()
        self.clock = threading.Condition(self.lock)
        self.secret = os.urandom(16)
        self.epoch = 0
        self.state = state  # the v1 engine's state file, shared
        self._clear()
        if state:
            state.add_part("agents", self.load, self.snapshot)
        threading.Thread(target=self._run_clock, daemon=True, name="agents-clock").start()

    def _clear(self) -> None:
        self.config, self.faults = self.start_config.copy(), self.start_faults.copy()
        self.rng = random.Random(self.seed)
        self.epoch += 1
        self.gens: dict[str, AgentGen] = {}
        self.files = FileStore(self)
        self.references = References(self)
        self.seq = 0
        self.windows: dict[str, deque] = {}
        self.slots: dict[str, dict[str, float]] = {}
        self.timers: list = []
        self.requests: Counter = Counter()
        self.statuses: Counter = Counter()
        self.per_generation: Counter = Counter()
        self.creates: Counter = Counter()
        self.downloads: Counter = Counter()
        self.faults_fired: Counter = Counter()
        self.sha_cache: dict[tuple, str] = {}

    def reset(self) -> None:
        with self.lock:
            self._clear()
            self.clock.notify_all()
        self.changed()

    # -- clock, randomness ------------------------------------------------------------------------------------

    def fires(self, fault: str) -> bool:
        with self.lock:
            fired = self.faults.fires(fault, self.rng)
            if fired:
                self.faults_fired[fault] += 1
            return fired

    def spread(self, seconds: float) -> float:
        with self.lock:
            roll = self.rng.random()
        return max(0.0, seconds * self.time_scale() * (1 + self.config.jitter * (2 * roll - 1)))

    def schedule(self, delay: float, action) -> None:
        """Run action() under the lock after delay seconds (dropped by a reset in between)."""
        with self.lock:
            heapq.heappush(self.timers, (time.monotonic() + delay, next(_tie), self.epoch, action))
            self.clock.notify_all()

    def _run_clock(self) -> None:
        while True:
            with self.lock:
                while not self.timers or self.timers[0][0] > time.monotonic():
                    self.clock.wait(None if not self.timers else self.timers[0][0] - time.monotonic())
                _due, _, epoch, action = heapq.heappop(self.timers)
                if epoch == self.epoch:
                    action()

    def _step(self, gen: AgentGen, delay: float, action) -> None:
        """Schedule gen's next step and note when it is due, so that a restart keeps to the same moment."""
        gen.due_at = time.time() + delay
        self.schedule(delay, action)

    def _start(self, gen: AgentGen) -> None:
        if gen.state == "queued":
            # Started late (the simulator was down when it was due): it still finishes when it would have.
            late = max(0.0, time.time() - gen.due_at) if gen.due_at else 0.0
            gen.state = "processing"
            self._render_ahead(gen)
            self._step(gen, max(0.0, gen.processing_for - late), lambda: self._finish(gen))
            self.changed()

    def _finish(self, gen: AgentGen) -> None:
        if gen.state != "processing":
            return
        code = gen.planned_failure
        if code is None and self.rng.random() < self.config.failure_rate:
            code = "generation_failed"
        self._end(gen, "failed" if code else "completed", code)

    def _end(self, gen: AgentGen, state: str, code: str | None = None, reason: str | None = None) -> None:
        gen.state = state
        if state == "failed":
            gen.failure_code = code or "generation_failed"
            gen.failure_reason = reason or FAILURE_REASONS[gen.failure_code]
        self.slots.get(gen.key, {}).pop(gen.id, None)
        self.changed()

    def _render_ahead(self, gen: AgentGen) -> None:
        main = gen.outputs[0]
        media.render_ahead(lambda: agents_media.render(gen.look, main, gen.width, gen.height, gen.seconds, gen.hdr))

    # -- keys -------------------------------------------------------------------------------------------------

    def authenticate(self, header: str) -> str:
        """The caller's key (its namespace), or 401 with Luma's texts."""
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key.startswith("luma-api-"):
            raise ApiError(401, "Missing or invalid API key")
        if key.endswith("-revoked"):
            raise ApiError(401, "API key has been revoked")
        if key.endswith("-expired"):
            raise ApiError(401, "API key has expired")
        if self.config.api_keys and key not in self.config.api_keys:
            raise ApiError(401, "Invalid API key")
        return key

    # -- generations ------------------------------------------------------------------------------------------

    def create(self, key: str, body) -> tuple[AgentGen, dict]:
        """Validate, resolve references, apply the limits, queue; returns the generation and the 201's headers."""
        request = parse(body)
        match = FAIL_MARKER.search(request.prompt)
        planned = None
        if match:
            planned = match.group(1) or "generation_failed"
            if planned not in FAILURE_REASONS:
                raise ApiError(400, f"simulator: unknown failure_code '{planned}' in [sim-fail:...]; known: "
                                    f"{', '.join(sorted(FAILURE_REASONS))}")
        resolved = [self.references.resolve(key, ref) for ref in request.refs]
        with self.lock:
            gen = self._plan(key, request, resolved, planned)
            self._check_limits(key)
            now = time.monotonic()
            self.windows.setdefault(key, deque()).append(now)
            self.slots.setdefault(key, {})[gen.id] = now
            gen.slot_since = time.time()
            self.seq += 1
            self.gens[gen.id] = gen
            self.creates["accepted"] += 1
            self._step(gen, gen.queued_for, lambda: self._start(gen))
            window = self.windows[key]
            headers = {"X-RateLimit-Limit": str(self.config.requests_per_minute),
                       "X-RateLimit-Remaining": str(max(0, self.config.requests_per_minute - len(window))),
                       "X-RateLimit-Reset": str(int(time.time() + 60))}
        self.changed()
        return gen, headers

    def _plan(self, key: str, request: CreateRequest, resolved: list[Resolved], planned: str | None) -> AgentGen:
        """Shape, outputs and timing of what this request makes; 422s that need the resolved references."""
        by_path = {r.ref.path: r for r in resolved}
        video = request.video
        source = by_path.get("source")
        extend = None
        anchors = [by_path.get(f"video.{slot}") for slot in ("start_frame", "end_frame")]
        chained = [a for a in anchors if a and a.generation]
        if chained:
            if len([a for a in anchors if a]) > 1:
                raise ApiError(422, "extending a video takes exactly one anchor frame (video.start_frame or "
                                    "video.end_frame)")
            if video.get("hdr"):
                raise ApiError(422, "video.hdr is not supported when extending a video (extend is SDR only)")
            extend = "Extend" if anchors[0] else "Reverse extend"
        if request.type in EDIT_MAX_SECONDS and source.seconds > EDIT_MAX_SECONDS[request.type]:
            raise ApiError(422, f"source: video is longer than {EDIT_MAX_SECONDS[request.type]:g} s")
        edit = video.get("edit") or {}
        if edit.get("keyframe_indexes") and source:
            frames = round((source.seconds or 5.0) * 24)
            for i, index in enumerate(edit["keyframe_indexes"]):
                if index > frames:
                    raise ApiError(422, f"video.edit.keyframe_indexes[{i}] must be between 0 and {frames}")
        if planned is None and any(not r.decodable for r in resolved):
            planned = "corrupt_input"

        hdr = bool(video.get("hdr"))
        kind = request.type
        if kind in ("image", "image_edit"):
            aspect = request.aspect_ratio or (agents_media.nearest_ratio(source.width, source.height, IMAGE_RATIOS)
                                              if source and source.width else "16:9")
            width, height = agents_media.image_size(aspect)
            seconds, base = 0.0, self.config.image_seconds
        elif kind == "layering":
            aspect = (agents_media.nearest_ratio(source.width, source.height, IMAGE_RATIOS)
                      if source.width else "16:9")
            width, height = agents_media.image_size(aspect, agents_media.LAYER_LONG_SIDE[request.layering_resolution])
            seconds, base = 0.0, self.config.image_seconds * 1.5
        else:
            origin = source or (chained[0] if chained else None)
            known = origin is not None and origin.width
            if kind == "video_edit" or (kind == "video" and not request.aspect_ratio and chained):
                aspect = agents_media.nearest_ratio(origin.width, origin.height, VIDEO_RATIOS) if known else "16:9"
            else:
                aspect = request.aspect_ratio or "16:9"
            if kind == "video":
                seconds = 10.0 if video["duration"] == "10s" else 5.0
            else:
                seconds = (origin.seconds if origin and origin.seconds else 5.0)
            width, height = agents_media.video_size(video["resolution"], aspect)
            longer = (video.get("duration") == "10s") + (video["resolution"] == "1080p") + hdr
            base = self.config.video_seconds * (1 + 0.2 * longer)
        gen_id = str(uuid.uuid4())
        return AgentGen(
            id=gen_id, seq=self.seq, key=key, model=request.model, type=kind, request=request.body,
            created_at=iso_now(),
            outputs=agents_media.outputs_for(kind, request.output_format, hdr, bool(video.get("exr_export"))),
            width=width, height=height, seconds=seconds, hdr=hdr, title=title_of(request, extend),
            caption=media.caption_of(FAIL_MARKER.sub("", request.prompt)), user_id=request.user_id,
            queued_for=self.spread(self.config.queued_seconds), processing_for=self.spread(base),
            planned_failure=planned,
        )

    def _check_limits(self, key: str) -> None:
        """RPM (sliding 60 s window), then concurrency; the 429s carry exactly section 10's headers."""
        now, wall = time.monotonic(), time.time()
        window = self.windows.setdefault(key, deque())
        while window and window[0] <= now - 60:
            window.popleft()
        slots = self.slots.setdefault(key, {})
        for gen_id, since in list(slots.items()):
            if since <= now - SLOT_LIFETIME:
                del slots[gen_id]
        limit = self.config.requests_per_minute
        if self.fires("rpm_429") or (self.config.limits and len(window) >= limit):
            wait = max(1, math.ceil(window[0] + 60 - now)) if window else 1
            self.creates["rate_limited_rpm"] += 1
            raise ApiError(429, "Rate limit exceeded", {
                "Retry-After": str(wait), "X-RateLimit-Limit": str(limit), "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(int(wall + wait))})
        if self.fires("concurrent_429") or (self.config.limits and len(slots) >= self.config.concurrent_jobs):
            self.creates["rate_limited_concurrent"] += 1
            raise ApiError(429, "Too many concurrent jobs", {"Retry-After": "60"})

    def visible(self, key: str, gen_id: str) -> AgentGen:
        with self.lock:
            gen = self.gens.get(gen_id)
            if gen is None or gen.key != key:
                raise ApiError(404, "Generation not found")
            return gen

    def to_api(self, gen: AgentGen) -> dict:
        """The Generation object; a completed one carries output URLs signed afresh on every call."""
        output = []
        if gen.state == "completed":
            for item in gen.outputs:
                entry = {"type": item.type, "url": self.output_url(gen, item.name)}
                if item.layer is not None:
                    entry["layer"] = dict(item.layer)
                output.append(entry)
        return {"id": gen.id, "type": gen.type, "state": gen.state, "model": gen.model, "created_at": gen.created_at,
                "output": output, "failure_code": gen.failure_code, "failure_reason": gen.failure_reason}

    # -- signed URLs (outputs and uploads) --------------------------------------------------------------------

    def _sign(self, *parts: str) -> str:
        return hmac.new(self.secret, "|".join(parts).encode(), hashlib.sha256).hexdigest()

    def _signed(self, path: str, lifetime: float, *extra: str) -> str:
        date = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        expires = str(max(1, math.ceil(lifetime)))
        signature = self._sign(path, date, expires, *extra)
        return (f"{self.root_url}{path}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date={date}"
                f"&X-Amz-Expires={expires}&X-Amz-SignedHeaders=host&X-Amz-Signature={signature}")

    def output_url(self, gen: AgentGen, name: str) -> str:
        lifetime = self.faults.values["expire_output_urls"] or self.config.output_url_seconds
        return self._signed(f"/agents-storage/generations/{gen.id}/{name}", lifetime)

    def upload_url(self, record) -> dict:
        lifetime = self.config.upload_url_seconds
        url = self._signed(f"/agents-storage/uploads/{record.id}", lifetime, "PUT", record.mime_type)
        expires = datetime.fromtimestamp(time.time() + lifetime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"url": url, "method": "PUT", "headers": {"Content-Type": record.mime_type}, "expires_at": expires}

    def check_signature(self, path: str, query: dict, *extra: str) -> None:
        """403 (S3's words) unless the URL carries a valid signature that has not expired."""
        date, expires = query.get("X-Amz-Date", ""), query.get("X-Amz-Expires", "")
        signature = query.get("X-Amz-Signature", "")
        if not hmac.compare_digest(signature, self._sign(path, date, expires, *extra)):
            raise ApiError(403, "SignatureDoesNotMatch")
        try:
            signed = datetime.strptime(date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC).timestamp()
            if signed + int(expires) < time.time():
                raise ApiError(403, "Request has expired")
        except ValueError:
            raise ApiError(403, "SignatureDoesNotMatch") from None

    def output_asset(self, gen_id: str, name: str) -> media.Asset:
        with self.lock:
            gen = self.gens.get(gen_id)
            item = next((o for o in gen.outputs if o.name == name), None) if gen else None
            if item is None or gen.state != "completed":
                raise ApiError(404, "NoSuchKey")
        return agents_media.render(gen.look, item, gen.width, gen.height, gen.seconds, gen.hdr)

    # -- introspection (/_sim/agents) -------------------------------------------------------------------------

    def tally(self, name: str) -> None:
        with self.lock:
            self.creates[name] += 1

    def count(self, route: str, status: int | None = None, gen_id: str | None = None) -> None:
        with self.lock:
            if status is None:
                self.requests[route] += 1
            else:
                self.statuses[f"{route} {status}"] += 1
            if gen_id and status is None:
                self.per_generation[gen_id] += 1

    def describe(self, gen: AgentGen) -> dict:
        outputs = []
        for item in gen.outputs if gen.state == "completed" else []:
            key = (gen.id, item.name)
            if key not in self.sha_cache:
                asset = self.output_asset(gen.id, item.name)
                self.sha_cache[key] = (asset.sha256(), asset.size)
            sha, size = self.sha_cache[key]
            outputs.append({"name": item.name, "type": item.type, "content_type": item.content_type,
                            "sha256": sha, "bytes": size, "layer": item.layer})
        return {"id": gen.id, "seq": gen.seq, "key": gen.key, "model": gen.model, "type": gen.type,
                "request": gen.request, "state": gen.state, "failure_code": gen.failure_code,
                "failure_reason": gen.failure_reason, "created_at": gen.created_at, "user_id": gen.user_id,
                "width": gen.width, "height": gen.height, "seconds": gen.seconds, "hdr": gen.hdr,
                "outputs": outputs, "sha256s": {o["name"]: o["sha256"] for o in outputs}}

    def all_generations(self) -> list[dict]:
        with self.lock:
            gens = sorted(self.gens.values(), key=lambda g: g.seq)
        return [self.describe(g) for g in gens]

    def stats(self) -> dict:
        with self.lock:
            return {"requests": dict(self.requests), "statuses": dict(self.statuses),
                    "per_generation": dict(self.per_generation), "creates": dict(self.creates),
                    "downloads": dict(self.downloads), "faults_fired": dict(self.faults_fired),
                    "generations": dict(Counter(g.state for g in self.gens.values())),
                    "per_key": dict(Counter(g.key for g in self.gens.values())),
                    "active": {k: len(v) for k, v in self.slots.items() if v}}

    def finish(self, gen_id: str, state: str, code: str | None = None, reason: str | None = None) -> AgentGen:
        """Force an outcome now (tests): processing, completed or failed (with a failure_code)."""
        if state not in ("processing", "completed", "failed"):
            raise ApiError(400, "state must be processing, completed or failed")
        if code is not None and code not in FAILURE_REASONS:
            raise ApiError(400, f"unknown failure_code '{code}'")
        with self.lock:
            gen = self.gens.get(gen_id)
            if gen is None:
                raise ApiError(404, "Generation not found")
            if gen.state in TERMINAL:
                raise ApiError(409, f"Generation is {gen.state} already")
            if state == "processing":
                if gen.state != "queued":
                    raise ApiError(409, f"Generation is {gen.state}, not queued")
                self._start(gen)
            else:
                self._end(gen, state, code, reason)
            return gen

    def set_config(self, changes: dict) -> None:
        with self.lock:
            self.config.update(changes)

    def public_config(self) -> dict:
        with self.lock:
            data = self.config.as_dict()
            data["api_keys"] = len(data["api_keys"])
            return {**data, "time_scale": self.time_scale()}

    # -- persistence (--state-file, under "agents") ------------------------------------------------------------

    def changed(self) -> None:
        if self.state:
            self.state.changed()

    def snapshot(self) -> dict:
        # Limit windows hold monotonic times, which mean nothing to another process: saved as wall-clock times.
        shift = time.time() - time.monotonic()
        with self.lock:
            return {"version": 1, "seq": self.seq, "secret": self.secret.hex(),
                    "windows": {key: [t + shift for t in times] for key, times in self.windows.items() if times},
                    "generations": [asdict(g) for g in sorted(self.gens.values(), key=lambda g: g.seq)],
                    "files": self.files.snapshot()}

    def load(self, data: dict) -> None:
        """Take over a saved state: generations in flight keep their schedule, each key its RPM window and slots,
        output URLs signed before the restart stay valid until they expire."""
        known = {f.name for f in fields(AgentGen)}
        now, shift = time.time(), time.monotonic() - time.time()
        with self.lock:
            self.seq = data["seq"]
            self.secret = bytes.fromhex(data["secret"])
            for key, times in data.get("windows", {}).items():
                self.windows[key] = deque(t + shift for t in times if t > now - 60)
            for raw in data["generations"]:
                gen = AgentGen(**{k: v for k, v in raw.items() if k in known})
                gen.outputs = [Output(**item) for item in gen.outputs]
                self.gens[gen.id] = gen
                if gen.state in TERMINAL:
                    continue
                self.slots.setdefault(gen.key, {})[gen.id] = gen.slot_since + shift  # _check_limits prunes old ones
                delay = max(0.0, gen.due_at - now)
                if gen.state == "queued":
                    self.schedule(delay, lambda gen=gen: self._start(gen))
                else:
                    self._render_ahead(gen)
                    self.schedule(delay, lambda gen=gen: self._finish(gen))
            self.files.load(data.get("files", {}))
