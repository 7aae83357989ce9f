"""The Luma simulator's state: generations in memory, their clock (queued -> dreaming -> completed/failed),
limits, credits, asset URLs, callbacks and the numbers the /_sim introspection API reports.

Error texts. Luma's own (docs "Errors" page), as 400 {"detail": ...}: "Prompt is required",
"Prompt is too short, minimum length is 3 characters", "Prompt is too long, maximum length is 5000 characters",
"Loop is not supported for end frame" / "... for keyframes" / "... for extend reverse" /
"... for interpolate video to image" / "... for interpolate image to video" / "... for interpolate between two videos",
"No keyframes provided", "Unknown request type" (a body whose generation_type does not match its endpoint), and
"concepts are not supported for this model" (seen through ComfyUI's proxy; we raise it for ray-flash-2).
Chosen here, where Luma documents nothing:
  400 "Generation <id> not found"            a keyframe {type: generation} names an unknown or deleted generation
  400 "Generation <id> is not completed"     a keyframe, upscale or audio source that is not completed yet
  400 "Generation <id> is not a video"       extend/interpolate/upscale/audio from an image generation
  400 "Unknown concept: <key>"               a concept key not in GET /generations/concepts/list
  400 "image_ref supports at most 4 images" (also style_ref), "character_ref supports at most 4 images per identity"
  401 "Invalid API key"                      missing, empty or (with --api-key) unknown bearer token
  402 "Insufficient credits"                 the balance does not cover the create's price (config.py)
  403 "Request has expired" / "Invalid signature"   asset URLs while expire_asset_urls is on
  404 "Generation not found"                 GET/DELETE/upscale/audio of an unknown or deleted id; "Not Found" else
  405 "Method Not Allowed"
  429 "Too many concurrent generations: at most N ray|photon generations can be queued or dreaming at once"
  429 "Rate limit exceeded: at most N create requests per minute for ray|photon models"
  429 "Too Many Requests" (burst_429 fault); 500/502/503 "Internal Server Error" (get_5xx fault)
  422 FastAPI/pydantic-v2 error lists for schema violations and bodies that are not JSON.
failure_reason texts: "Contains blacklisted words" (prompt has the word "blacklisted"), "Failed to read user input
frames" (a loopback keyframe/media URL that does not answer 200 with an image, or any remote one with
--remote-keyframes fail), "Job failed" (random share failure_rate, or a forced failure without a reason).
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
from urllib.parse import parse_qs, urlsplit

from . import media
from .callbacks import Dispatcher
from .config import UPSCALE_DEFAULT, Config, cost_of, resolution_of
from .faults import Faults
from .loopback import fetch_media, fetch_ok, is_loopback_url
from .persistence import StateFile
from .validation import ApiError, parse

TERMINAL = ("completed", "failed")
BLACKLISTED = re.compile(r"\bblacklisted\b", re.IGNORECASE)
ASSET_PATH = re.compile(r"^/assets/([0-9a-f-]{36})/[^/]+$")
_tie = itertools.count()  # keeps heap entries comparable when two are due at the same instant


@dataclass
class Gen:
    id: str
    seq: int
    kind: str  # the request's generation_type: video, image, upscale_video, add_audio, modify_video, reframe_*
    output: str  # "video" | "image": what it makes, and the response's generation_type
    family: str  # "ray" | "photon": which limits it counts against
    model: str
    request: dict
    aspect_ratio: str
    seconds: float  # length of the rendered clip: as asked (5 s, 9 s) or the source's
    created_at: str
    callback_url: str | None
    cost: float
    asset_bytes: int
    image_format: str = "jpg"
    state: str = "queued"
    failure_reason: str | None = None
    charged: bool = True
    planned_failure: str | None = None
    inputs: str = "ok"  # "pending" while loopback inputs are fetched, then "ok" | "failed"
    queued_for: float = 0.0
    dreaming_for: float = 0.0
    eta: float = 0.0  # monotonic time it is expected to finish, for Retry-After
    due_at: float = 0.0  # wall-clock time of its next step (start or finish): a restart keeps the clock going
    deleted: bool = False
    width: int = 0  # pixel size of the asset; 0 in state files from before sizes were kept
    height: int = 0
    caption: str = ""  # the prompt's first words (the source's for an upscale), drawn on the asset


def title_of(kind: str, request: dict) -> str:
    """The kind's name as a person would say it, drawn on the asset."""
    if kind == "video":
        frames = request.get("keyframes") or {}
        types = tuple((frames.get(slot) or {}).get("type") for slot in ("frame0", "frame1"))
        name = {("generation", None): "Extend", (None, "generation"): "Reverse extend",
                ("generation", "generation"): "Interpolate"}.get(types)
        if name is None:
            name = "Image to video" if "image" in types else "Text to video"
        return name + (" (loop)" if request.get("loop") else "")
    if kind == "image":
        return "Modify image" if request.get("modify_image_ref") else "Image"
    if kind == "upscale_video":
        return f"Upscale to {request.get('resolution') or UPSCALE_DEFAULT}"
    if kind == "modify_video":
        return f"Modify video ({request.get('mode')})"
    if kind in ("reframe_video", "reframe_image"):
        return f"Reframe {kind.removeprefix('reframe_')} to {request.get('aspect_ratio')}"
    return "Add audio"


def iso_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Engine:
    def __init__(self, config: Config, faults: Faults, seed: int | None, root_url: str, state_file: str | None = None):
        self.start_config, self.start_faults, self.seed = config.copy(), faults.copy(), seed
        self.root_url = root_url.rstrip("/")
        self.state = StateFile(state_file, self.snapshot) if state_file else None
        self.lock = threading.RLock()
        self.rng_lock = threading.Lock()
        self.clock = threading.Condition(self.lock)
        self.secret = os.urandom(16)
        self.dispatcher = Dispatcher(lambda: self.faults, None, self.rng_lock, config.allow_remote_callbacks,
                                     config.callback_retries, config.callback_timeout)
        self._clear()
        if self.state:
            if saved := self.state.read():
                self.load(saved)
            self.state.start()
        threading.Thread(target=self._run_clock, daemon=True, name="clock").start()

    def _clear(self) -> None:
        self.config, self.faults = self.start_config.copy(), self.start_faults.copy()
        self.rng = random.Random(self.seed)
        self.dispatcher.rng = self.rng
        self._configure_dispatcher()
        self.epoch = getattr(self, "epoch", 0) + 1
        self.gens: dict[str, Gen] = {}
        self.seq = 0
        self.balance = self.config.credits
        self.windows = {"ray": deque(), "photon": deque()}
        self.inflight = {"ray": set(), "photon": set()}
        self.timers: list = []
        self.create_attempts: list[str | None] = []
        self.requests: Counter = Counter()
        self.per_generation: Counter = Counter()
        self.assets = Counter()
        self.faults_fired: Counter = Counter()  # injected faults that actually happened, by name
        self.sha_cache: dict[tuple, str] = {}

    def reset(self) -> None:
        """Forget every generation and counter; settings and faults return to their startup values."""
        with self.lock:
            self._clear()
            self.dispatcher.reset()
            self.clock.notify_all()
        self._changed()

    # -- randomness, clock ------------------------------------------------------------------------------------

    def fires(self, fault: str) -> bool:
        with self.rng_lock:
            fired = self.faults.fires(fault, self.rng)
            if fired:
                self.faults_fired[fault] += 1
            return fired

    def _roll(self) -> float:
        with self.rng_lock:
            return self.rng.random()

    def _spread(self, seconds: float) -> float:
        jitter = self.config.jitter
        return max(0.0, seconds * self.config.time_scale * (1 + jitter * (2 * self._roll() - 1)))

    def _schedule(self, gen_id: str, delay: float, action: str) -> None:
        if gen := self.gens.get(gen_id):
            gen.due_at = time.time() + delay
        heapq.heappush(self.timers, (time.monotonic() + delay, next(_tie), self.epoch, gen_id, action))
        self.clock.notify_all()

    def _run_clock(self) -> None:
        while True:
            with self.lock:
                while not self.timers or self.timers[0][0] > time.monotonic():
                    self.clock.wait(None if not self.timers else self.timers[0][0] - time.monotonic())
                _due, _, epoch, gen_id, action = heapq.heappop(self.timers)
                if epoch == self.epoch:
                    self._advance(gen_id, action)

    def _advance(self, gen_id: str, action: str) -> None:
        gen = self.gens.get(gen_id)
        if not gen or gen.deleted or gen.state in TERMINAL:
            return
        if action == "start" and gen.state == "queued":
            if gen.inputs == "pending":
                self._schedule(gen_id, 0.05, "start")  # moderation waits for the keyframe fetch
                return
            reason = gen.planned_failure or ("Failed to read user input frames" if gen.inputs == "failed" else None)
            if reason:
                self._set_state(gen, "failed", reason)
                return
            self._set_state(gen, "dreaming")
            self._schedule(gen_id, gen.dreaming_for, "finish")
        elif action == "finish" and gen.state == "dreaming":
            if self._roll() < self.config.failure_rate:
                self._set_state(gen, "failed", "Job failed")
            else:
                self._set_state(gen, "completed")

    def _set_state(self, gen: Gen, state: str, reason: str | None = None) -> None:
        gen.state, gen.failure_reason = state, reason if state == "failed" else None
        if state in TERMINAL:
            self.inflight[gen.family].discard(gen.id)
            if state == "failed" and gen.charged:
                self.balance += gen.cost  # Luma refunds failed generations in full
                gen.charged = False
            elif state == "completed" and not gen.charged:
                self.balance -= gen.cost
                gen.charged = True
        else:
            self.inflight[gen.family].add(gen.id)
        if state == "dreaming":
            media.render_ahead(lambda: self.asset(gen.id, self.main_asset_name(gen), ahead=True))
        if gen.callback_url:
            self.dispatcher.send(gen.id, gen.callback_url, self.to_api(gen), terminal=state in TERMINAL)
        self._changed()

    # -- the Luma API -----------------------------------------------------------------------------------------

    def create(self, kind: str, body, source_id: str | None = None) -> Gen:
        parsed = parse(kind, body)
        echo = parsed.echo
        with self.lock:
            model, aspect, seconds = parsed.model, parsed.aspect_ratio, 9.0 if parsed.duration == "9s" else 5.0
            source = None
            if source_id is not None:
                source = self.gens.get(source_id)
                if not source or source.deleted:
                    raise ApiError(404, "Generation not found")
                self._require_video(source)
                model, aspect, seconds = source.model, source.aspect_ratio, source.seconds
            for _slot, ref_id in parsed.references:
                ref = self.gens.get(ref_id)
                if not ref or ref.deleted:
                    raise ApiError(400, f"Generation {ref_id} not found")
                self._require_video(ref)
                if echo.get("aspect_ratio") is None:
                    aspect = ref.aspect_ratio
            output = "image" if kind in ("image", "reframe_image") else "video"
            family = "photon" if output == "image" else "ray"
            self._check_limits(family)
            resolution = (echo.get("resolution") or UPSCALE_DEFAULT) if kind == "upscale_video" else parsed.resolution
            media_source = self._own_source(parsed.media_urls[0]) if parsed.media_urls else None
            aspect, width, height, seconds = self._shape(kind, aspect, resolution, seconds, source or media_source)
            cost = cost_of(kind, model, self._priced_resolution(kind, resolution, media_source), seconds)
            if self.balance < cost:
                raise ApiError(402, "Insufficient credits")
            gen = Gen(
                id=str(uuid.uuid4()), seq=self.seq, kind=kind, output=output, family=family, model=model,
                request=echo, aspect_ratio=aspect, seconds=seconds, created_at=iso_now(),
                callback_url=parsed.callback_url, cost=cost, asset_bytes=self.config.asset_bytes,
                image_format=echo.get("format") or "jpg", width=width, height=height,
                caption=media.caption_of(parsed.prompt) or getattr(source or media_source, "caption", ""),
                queued_for=self._spread(self.config.queued_seconds),
                dreaming_for=self._spread(self.config.dreaming_seconds),
            )
            gen.eta = time.monotonic() + gen.queued_for + gen.dreaming_for
            if BLACKLISTED.search(parsed.prompt):
                gen.planned_failure = "Contains blacklisted words"
            self.seq += 1
            self.balance -= cost
            self.gens[gen.id] = gen
            self.windows[family].append(time.monotonic())
            self.inflight[family].add(gen.id)
            self._start_input_checks(gen, parsed.image_urls, parsed.media_urls, measure=media_source is None)
            self._schedule(gen.id, gen.queued_for, "start")
        self._changed()
        return gen

    @staticmethod
    def _shape(kind: str, aspect: str, resolution: str, seconds: float, source: "Gen | None"):
        """Aspect ratio, width, height and seconds of what this create makes (source: the video it works on)."""
        if kind in ("image", "reframe_image", "reframe_video"):
            width, height = media.canvas_size(aspect)
            return aspect, width, height, (source.seconds if source else 5.0)
        if kind in ("add_audio", "modify_video"):
            if not source:  # a media URL we cannot see into before the input check (or never)
                return "16:9", *media.video_size("720p", "16:9"), 5.0
            return source.aspect_ratio, *Engine._size(source), source.seconds
        width, height = media.video_size(resolution, aspect)
        if kind == "upscale_video" and source and width * height < source.width * source.height:
            width, height = source.width, source.height  # an upscale never shrinks its source
        return aspect, width, height, seconds

    @staticmethod
    def _priced_resolution(kind: str, resolution: str, media_source: "Gen | None") -> str:
        """What a create is billed at: a modify or reframe the source's resolution (720p until it is measured),
        anything else the resolution asked for (an upscale its target)."""
        if kind not in ("modify_video", "reframe_video"):
            return resolution
        return resolution_of(*Engine._size(media_source)) if media_source else "720p"

    @staticmethod
    def _size(gen: Gen) -> tuple[int, int]:
        if gen.width and gen.height:
            return gen.width, gen.height
        if gen.kind in ("image", "reframe_image", "reframe_video"):
            return media.canvas_size(gen.aspect_ratio)
        return media.video_size("720p", gen.aspect_ratio)

    def _own_source(self, url: str) -> "Gen | None":
        """The generation whose asset this URL is (a modify or reframe of a video this simulator made), if any."""
        found = ASSET_PATH.match(urlsplit(url).path)
        gen = self.gens.get(found.group(1)) if found else None
        return gen if gen and gen.output == "video" else None

    def _require_video(self, gen: Gen) -> None:
        if gen.output != "video":
            raise ApiError(400, f"Generation {gen.id} is not a video")
        if gen.state != "completed":
            raise ApiError(400, f"Generation {gen.id} is not completed")

    def _check_limits(self, family: str) -> None:
        if not self.config.limits:
            return
        now = time.monotonic()
        window = self.windows[family]
        while window and window[0] <= now - 60:
            window.popleft()
        per_minute = self.config.creates_per_minute if family == "ray" else self.config.image_creates_per_minute
        if len(window) >= per_minute:
            wait = max(1, math.ceil(60 - (now - window[0])))
            raise ApiError(429, f"Rate limit exceeded: at most {per_minute} create requests per minute for "
                                f"{family} models", {"Retry-After": str(wait)})
        concurrent = self.config.concurrent_limit if family == "ray" else self.config.image_concurrent_limit
        busy = [self.gens[i] for i in self.inflight[family]]
        if len(busy) >= concurrent:
            wait = max(1, math.ceil(min(g.eta for g in busy) - now)) if busy else 1
            raise ApiError(429, f"Too many concurrent generations: at most {concurrent} {family} generations can "
                                "be queued or dreaming at once", {"Retry-After": str(wait)})

    def _start_input_checks(self, gen: Gen, image_urls: list, media_urls: list, measure: bool) -> None:
        """Fetch loopback inputs before the generation may start; measure: read a source video's size and length
        (modify and reframe make what their source is), unless it is one of ours and already known."""
        urls = [(u, True) for u in image_urls] + [(u, False) for u in media_urls]
        local = [(u, image) for u, image in urls if is_loopback_url(u)]
        measure = measure and gen.kind in ("modify_video", "reframe_video")
        if self.config.remote_keyframes == "fail" and len(local) < len(urls):
            gen.inputs = "failed"  # remote URLs are never fetched: this machine must make no outside traffic
        elif local:
            gen.inputs = "pending"
            threading.Thread(target=self._check_inputs, args=(gen.id, local, self.epoch, measure),
                             daemon=True).start()

    def _check_inputs(self, gen_id: str, urls: list, epoch: int, measure: bool) -> None:
        ok, shape = True, None
        for url, image in urls:
            if measure and not image:
                answered, data = fetch_media(url)
                ok = ok and answered
                shape = media.probe_video(data) if data else None
            else:
                ok = ok and fetch_ok(url, image)
        with self.lock:
            gen = self.gens.get(gen_id)
            if gen and epoch == self.epoch:
                gen.inputs = "ok" if ok else "failed"
                if shape:
                    width, height, gen.seconds = shape
                    if gen.charged:  # billed as a 720p 5 s source until measured: now for what it is
                        cost = cost_of(gen.kind, gen.model, resolution_of(width, height), gen.seconds)
                        self.balance -= cost - gen.cost
                        gen.cost = cost
                    if gen.kind == "modify_video":  # a reframe keeps its canvas, a modify the source's frame
                        gen.width, gen.height = width, height
                        gen.aspect_ratio = media.nearest_aspect_ratio(width, height)

    def visible(self, gen_id: str) -> Gen:
        with self.lock:
            gen = self.gens.get(gen_id)
            if not gen or gen.deleted:
                raise ApiError(404, "Generation not found")
            return gen

    def delete(self, gen_id: str) -> None:
        with self.lock:
            gen = self.visible(gen_id)
            gen.deleted = True
            self.inflight[gen.family].discard(gen.id)
        self._changed()

    def page(self, limit: int, offset: int) -> dict:
        with self.lock:
            newest_first = sorted((g for g in self.gens.values() if not g.deleted), key=lambda g: -g.seq)
            chosen = newest_first[offset:offset + limit]
            return {"generations": [self.to_api(g) for g in chosen], "count": len(chosen),
                    "has_more": offset + len(chosen) < len(newest_first), "limit": limit, "offset": offset}

    def wait_until_done(self, gen_id: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                gen = self.gens.get(gen_id)
                if not gen or gen.state in TERMINAL:
                    return
            time.sleep(0.02)

    def to_api(self, gen: Gen) -> dict:
        """The Generation object exactly as Luma's GET /generations/{id} returns it."""
        assets = None
        if gen.state != "queued":
            assets = {"video": None, "image": None, "progress_video": None}
            if gen.state == "dreaming" and gen.output == "video":
                assets["progress_video"] = self.asset_url(gen, "progress.mp4")
            elif gen.state == "completed":
                assets[gen.output] = self.asset_url(gen, self.main_asset_name(gen))
        return {"id": gen.id, "generation_type": gen.output, "state": gen.state, "failure_reason": gen.failure_reason,
                "created_at": gen.created_at, "assets": assets, "model": gen.model, "request": gen.request}

    # -- assets -----------------------------------------------------------------------------------------------

    @staticmethod
    def main_asset_name(gen: Gen) -> str:
        return "video.mp4" if gen.output == "video" else f"image.{'png' if gen.image_format == 'png' else 'jpg'}"

    def _sign(self, path: str, expires: str) -> str:
        return hmac.new(self.secret, f"{path}|{expires}".encode(), hashlib.sha256).hexdigest()[:32]

    def asset_url(self, gen: Gen, name: str) -> str:
        path = f"/assets/{gen.id}/{name}"
        lifetime = self.faults.seconds("expire_asset_urls")
        if not lifetime:
            return self.root_url + path
        expires = f"{time.time() + lifetime:.3f}"
        return f"{self.root_url}{path}?expires={expires}&sig={self._sign(path, expires)}"

    def check_signature(self, path: str, query: str) -> None:
        """While expire_asset_urls is on, asset URLs must carry a valid, unexpired signature (else 403)."""
        if not self.faults.seconds("expire_asset_urls"):
            return
        params = parse_qs(query)
        expires, sig = params.get("expires", [""])[0], params.get("sig", [""])[0]
        if not expires or not hmac.compare_digest(sig, self._sign(path, expires)):
            raise ApiError(403, "Invalid signature")
        try:
            if float(expires) < time.time():
                with self.rng_lock:
                    self.faults_fired["expired_asset_url_refused"] += 1
                raise ApiError(403, "Request has expired")
        except ValueError:
            raise ApiError(403, "Invalid signature") from None

    def asset(self, gen_id: str, name: str, ahead: bool = False) -> media.Asset:
        """The asset's bytes (404 unless it exists now); ahead: render a dreaming generation's file in advance."""
        with self.lock:
            gen = self.gens.get(gen_id)
            if not gen or gen.deleted:
                raise ApiError(404, "Not Found")
            look = media.Look(gen.id, gen.seq, title_of(gen.kind, gen.request), gen.caption)
            width, height = self._size(gen)
            progress = gen.output == "video" and name == "progress.mp4" and gen.state in ("dreaming", "completed")
            ready = gen.state == "completed" or (ahead and gen.state == "dreaming")
            if not progress and (not ready or name != self.main_asset_name(gen)):
                raise ApiError(404, "Not Found")
        # Rendered outside the lock: a large clip takes a moment, and the clock and the API must not wait for it.
        if progress:
            return media.video_asset(look, "progress", width, height, gen.seconds)
        if gen.output == "video":
            return media.video_asset(look, "video", width, height, gen.seconds, gen.asset_bytes,
                                     audio=gen.kind == "add_audio")
        return media.image_asset(look, width, height, gen.image_format)

    def asset_sha256(self, gen: Gen, name: str) -> str:
        key = (gen.id, name)
        if key not in self.sha_cache:
            self.sha_cache[key] = self.asset(gen.id, name).sha256()  # deterministic: same bytes every download
        return self.sha_cache[key]

    # -- introspection (/_sim) --------------------------------------------------------------------------------

    def count_request(self, endpoint: str, gen_id: str | None) -> None:
        with self.lock:
            self.requests[endpoint] += 1
            if gen_id:
                self.per_generation[gen_id] += 1

    def note_create_attempt(self, callback_url) -> None:
        with self.lock:
            self.create_attempts.append(callback_url if isinstance(callback_url, str) else None)

    def count_asset(self, key: str, amount: int = 1) -> None:
        with self.lock:
            self.assets[key] += amount

    def describe(self, gen: Gen) -> dict:
        name = self.main_asset_name(gen)
        done = gen.state == "completed" and not gen.deleted
        sha = self.asset_sha256(gen, name) if done else None
        return {
            "id": gen.id, "seq": gen.seq, "state": gen.state, "failure_reason": gen.failure_reason,
            "callback_url": gen.callback_url, "kind": gen.kind, "generation_type": gen.output, "model": gen.model,
            "created_at": gen.created_at, "deleted": gen.deleted, "cost": gen.cost, "charged": gen.charged,
            "asset": f"{self.root_url}/assets/{gen.id}/{name}" if done else None, "sha256": sha,
            "sha256s": {name: sha} if done else {}, "asset_bytes": self.asset(gen.id, name).size if done else None,
        }

    def all_generations(self) -> list[dict]:
        with self.lock:
            gens = sorted(self.gens.values(), key=lambda g: g.seq)
        return [self.describe(g) for g in gens]

    def creates(self, contains: str) -> dict:
        with self.lock:
            ids = [g.id for g in sorted(self.gens.values(), key=lambda g: g.seq)
                   if contains in (g.callback_url or "") or (not contains)]
            attempts = sum(1 for url in self.create_attempts if not contains or contains in (url or ""))
        return {"count": len(ids), "ids": ids, "attempts": attempts, "callback_url_contains": contains}

    def stats(self) -> dict:
        with self.lock:
            return {"requests": dict(self.requests), "per_generation": dict(self.per_generation),
                    "assets": dict(self.assets), "callbacks": self.dispatcher.stats(),
                    "faults_fired": dict(self.faults_fired),
                    "generations": dict(Counter(g.state for g in self.gens.values() if not g.deleted)),
                    "credit_balance": self.balance}

    def finish(self, gen_id: str, state: str, reason: str | None = None) -> Gen:
        """Force an outcome now (tests): completed, failed (default reason "Job failed") or dreaming."""
        if state not in ("completed", "failed", "dreaming"):
            raise ApiError(400, "state must be completed, failed or dreaming")
        with self.lock:
            gen = self.visible(gen_id)
            if state == "dreaming":
                if gen.state != "queued":
                    raise ApiError(409, f"Generation is {gen.state}, not queued")
                self._set_state(gen, "dreaming")
                self._schedule(gen.id, gen.dreaming_for, "finish")
            elif gen.state != state or (state == "failed" and reason and reason != gen.failure_reason):
                self._set_state(gen, state, (reason or "Job failed") if state == "failed" else None)
            return gen

    def set_config(self, changes: dict) -> None:
        with self.lock:
            self.config.update(changes)
            if "credits" in changes:
                self.balance = self.config.credits  # "credits" sets the balance now, not only the start value
            self._configure_dispatcher()
        self._changed()

    def _configure_dispatcher(self) -> None:
        self.dispatcher.allow_remote = self.config.allow_remote_callbacks
        self.dispatcher.retries = self.config.callback_retries
        self.dispatcher.timeout = self.config.callback_timeout

    def public_config(self) -> dict:
        with self.lock:
            return {**self.config.public(), "credits": self.balance, "seed": self.seed}

    # -- persistence (--state-file) ---------------------------------------------------------------------------

    def _changed(self) -> None:
        if self.state:
            self.state.changed()

    def save_state(self) -> None:
        """Write the state file now (on shutdown); without one, nothing to do."""
        if self.state:
            self.state.write()

    def snapshot(self) -> dict:
        with self.lock:
            return {"version": 2, "seq": self.seq, "balance": self.balance, "secret": self.secret.hex(),
                    "generations": [asdict(g) for g in sorted(self.gens.values(), key=lambda g: g.seq)]}

    def load(self, data: dict) -> None:
        """Take over a saved state; generations in flight go on from where their clock is now, not from scratch."""
        known = {f.name for f in fields(Gen)}
        now = time.time()
        with self.lock:
            self.seq, self.balance = data["seq"], data["balance"]
            if data.get("secret"):
                self.secret = bytes.fromhex(data["secret"])  # asset URLs signed before the restart stay valid
            for raw in data["generations"]:
                gen = Gen(**{k: v for k, v in raw.items() if k in known})
                gen.inputs = "failed" if gen.inputs == "failed" else "ok"
                self.gens[gen.id] = gen
                if gen.state in TERMINAL or gen.deleted:
                    continue
                self.inflight[gen.family].add(gen.id)
                queued = gen.state == "queued"
                if gen.due_at:
                    delay = max(0.0, gen.due_at - now)
                else:  # a file from before due_at was saved
                    delay = gen.queued_for if queued else gen.dreaming_for
                gen.eta = time.monotonic() + delay + (gen.dreaming_for if queued else 0.0)
                self._schedule(gen.id, delay, "start" if queued else "finish")
