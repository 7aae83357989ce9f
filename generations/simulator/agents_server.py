"""HTTP front of the simulator's Agents API, called from server.py's handler: Luma's /v1 under /agents, the signed
storage URLs (outputs, presigned uploads) under /agents-storage, and the introspection API under /_sim/agents.

Every /agents answer carries X-API-Version and X-Request-Id (echoed when the request sent one); storage answers
speak S3 (XML errors, 403 for a bad or expired signature) and never need the API key.
"""

import hashlib
import json
import logging
import re
import threading
import time
import uuid
from urllib.parse import parse_qs

from .agents_config import CHANCE_FAULTS, SECONDS_FAULTS, AgentsConfig, AgentsFaults
from .agents_engine import AgentsEngine
from .validation import ApiError

API_VERSION = "2026-04-01"
API_PREFIX, STORAGE_PREFIX, SIM_PREFIX = "/agents", "/agents-storage", "/_sim/agents"
log = logging.getLogger("lumasim")
_lazy = threading.Lock()

# (method, path template): literal paths first, as FastAPI matches them.
ROUTES = [
    ("POST", "/generations"),
    ("GET", "/generations/{id}"),
    ("POST", "/files"),
    ("GET", "/files"),
    ("POST", "/files/{id}/complete"),
    ("GET", "/files/{id}"),
    ("DELETE", "/files/{id}"),
]
_COMPILED = [(m, t, re.compile("^" + t.replace("{id}", "(?P<id>[^/]+)") + "$")) for m, t in ROUTES]
SERVER_ERRORS = {500: "Internal Server Error", 502: "Upstream service unavailable", 503: "Service Unavailable"}
SIM_ENDPOINTS = {
    "GET /_sim/agents/generations": "every generation: id, seq, key, type, model, request, state, failure_code, "
                                    "outputs with sha256 and bytes",
    "GET /_sim/agents/generations/<id>": "one generation, with its API JSON",
    "POST /_sim/agents/generations/<id>/finish": '{"state": "processing"|"completed"|"failed", "failure_code", '
                                                 '"failure_reason"}',
    "GET /_sim/agents/files": "every file of every key",
    "GET /_sim/agents/stats": "requests per route, statuses, GETs per generation, creates, downloads, faults fired",
    "GET|POST /_sim/agents/config": "durations, limits, URL lifetimes, remote_refs, failure_rate, api_keys",
    "GET|POST /_sim/agents/faults": "fault injection (see 'faults')",
    "POST /_sim/agents/reset": "forget every generation and file; settings and faults return to their start values "
                               "(POST /_sim/reset does this too)",
}


def handles(path: str) -> bool:
    return (path == API_PREFIX or path.startswith((API_PREFIX + "/", STORAGE_PREFIX + "/"))
            or path == SIM_PREFIX or path.startswith(SIM_PREFIX + "/"))


def engine_of(server) -> AgentsEngine:
    """The server's Agents engine (cli.py makes it; made here with defaults for any other embedder)."""
    engine = getattr(server, "agents", None)
    if engine is None:
        with _lazy:
            engine = getattr(server, "agents", None)
            if engine is None:
                v1 = server.engine
                engine = server.agents = AgentsEngine(AgentsConfig(), AgentsFaults(), v1.seed, v1.root_url,
                                                      lambda: v1.config.time_scale)
    return engine


def reset(server) -> None:
    engine_of(server).reset()


def dispatch(handler, method: str, path: str, query: str, raw: bytes) -> None:
    engine = engine_of(handler.server)
    if path.startswith(STORAGE_PREFIX + "/"):
        _storage(handler, engine, method, path, query, raw)
    elif path == SIM_PREFIX or path.startswith(SIM_PREFIX + "/"):
        try:
            _sim(handler, engine, method, path, query, raw)
        except ApiError as exc:
            handler._send(exc.status, {"detail": exc.detail}, exc.headers)
    else:
        _api(handler, engine, method, path[len(API_PREFIX):] or "/", query, raw)


# -- Luma's API ---------------------------------------------------------------------------------------------------

def _match(method: str, path: str):
    hits = [(m, t, found.groupdict()) for m, t, rx in _COMPILED if (found := rx.match(path))]
    chosen = [h for h in hits if h[0] == method]
    return (chosen[0] if chosen else None), sorted({h[0] for h in hits})


def _request_id(sent: str | None) -> str:
    if sent and re.fullmatch(r"[\x21-\x7e]{1,200}", sent):
        return sent
    return str(uuid.uuid4())


def _json(raw: bytes):
    if not raw.strip():
        raise ApiError(422, [{"type": "missing", "loc": ["body"], "msg": "Field required", "input": None}])
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ApiError(422, [{"type": "json_invalid", "loc": ["body", getattr(exc, "pos", 0)],
                              "msg": "JSON decode error", "input": {},
                              "ctx": {"error": getattr(exc, "msg", str(exc))}}]) from None


def _api(handler, engine: AgentsEngine, method: str, path: str, query: str, raw: bytes) -> None:
    common = {"X-API-Version": API_VERSION, "X-Request-Id": _request_id(handler.headers.get("X-Request-Id"))}
    route, allowed = _match(method, path)
    label = f"{method} {route[1]}" if route else f"{method} (unknown)"
    try:
        if route is None:
            if allowed:
                raise ApiError(405, "Method Not Allowed", {"Allow": ", ".join(allowed)})
            raise ApiError(404, "Not Found")
        _m, template, params = route
        engine.count(label, gen_id=params.get("id") if template == "/generations/{id}" else None)
        key = engine.authenticate(handler.headers.get("Authorization", ""))
        if pause := engine.faults.values["slow_responses"]:
            time.sleep(pause)
        status, payload, headers = _answer(handler, engine, key, template, params, query, raw)
    except ApiError as exc:
        status, payload, headers = exc.status, {"detail": exc.detail}, exc.headers
    if status == "lost":
        engine.count(label, "lost")
        handler._drop_connection()
        return
    engine.count(label, status)
    handler._send(status, payload, {**headers, **common})


def _answer(handler, engine: AgentsEngine, key: str, template: str, params: dict, query: str, raw: bytes):
    """(status, JSON payload, extra headers) of one API call; status "lost" means: close without answering."""
    if template == "/generations":
        engine.tally("attempts")
        gen, headers = engine.create(key, _json(raw))
        if engine.fires("lost_creates"):
            engine.tally("lost")
            return "lost", None, {}
        if engine.fires("create_5xx_after_accept"):
            engine.tally("answered_5xx")
            return 502, {"detail": SERVER_ERRORS[502]}, {}
        with engine.lock:
            return 201, engine.to_api(gen), headers
    if template == "/generations/{id}":
        gen = engine.visible(key, params["id"])
        if engine.fires("get_5xx"):
            with engine.lock:
                status = (500, 502, 503)[engine.rng.randrange(3)]
            return status, {"detail": SERVER_ERRORS[status]}, {}
        with engine.lock:
            return 200, engine.to_api(gen), {}
    files = engine.files
    if template == "/files":
        if handler.command == "GET":
            return 200, files.page(key, {k: v[-1] for k, v in parse_qs(query).items()}), {}
        content_type = handler.headers.get("Content-Type", "")
        if content_type.lower().startswith("multipart/form-data"):
            return 201, files.create_multipart(key, content_type, raw), {}
        return 201, files.create_json(key, _json(raw)), {}
    if template == "/files/{id}/complete":
        return 200, files.complete(key, params["id"]), {}
    if handler.command == "DELETE":
        files.delete(key, params["id"])
        return 204, None, {}
    return 200, files.get(key, params["id"]), {}


# -- storage: signed output downloads and presigned uploads ------------------------------------------------------

def _send_raw(handler, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("x-amz-request-id", uuid.uuid4().hex[:16].upper())
    for name, value in (headers or {}).items():
        handler.send_header(name, value)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


def _s3_error(handler, exc: ApiError) -> None:
    code = {403: "AccessDenied", 404: "NoSuchKey", 405: "MethodNotAllowed", 416: "InvalidRange"}.get(exc.status)
    code = exc.detail if exc.detail in ("SignatureDoesNotMatch", "NoSuchKey") else code or "InternalError"
    message = exc.detail if exc.detail not in (code, "AccessDenied") else code
    body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}</Message>'
            "</Error>").encode()
    _send_raw(handler, exc.status, body, "application/xml", exc.headers)


def _storage(handler, engine: AgentsEngine, method: str, path: str, query: str, raw: bytes) -> None:
    params = {k: v[-1] for k, v in parse_qs(query).items()}
    pieces = path.split("/")  # "", "agents-storage", "generations"|"uploads", id[, name]
    try:
        if len(pieces) == 5 and pieces[2] == "generations":
            if method not in ("GET", "HEAD"):
                raise ApiError(405, "MethodNotAllowed", {"Allow": "GET, HEAD"})
            _download(handler, engine, method, path, params, pieces[3], pieces[4])
        elif len(pieces) == 4 and pieces[2] == "uploads":
            if method != "PUT":
                raise ApiError(405, "MethodNotAllowed", {"Allow": "PUT"})
            engine.count("PUT upload")
            engine.check_signature(path, params, "PUT", handler.headers.get("Content-Type", ""))
            engine.files.put(pieces[3], raw)
            engine.count("PUT upload", 200)
            _send_raw(handler, 200, b"", "application/xml", {"ETag": f'"{hashlib.md5(raw).hexdigest()}"'})
        else:
            raise ApiError(404, "NoSuchKey")
    except ApiError as exc:
        _s3_error(handler, exc)


def _download(handler, engine: AgentsEngine, method: str, path: str, params: dict, gen_id: str, name: str) -> None:
    engine.count("GET output")
    engine.check_signature(path, params)
    if engine.fires("expired_downloads"):
        raise ApiError(403, "Request has expired")
    asset = engine.output_asset(gen_id, name)
    size = asset.size
    start, end, status = 0, size, 200
    if spec := handler.headers.get("Range"):
        parsed = _parse_range(spec, size)
        if parsed == "unsatisfiable":
            raise ApiError(416, "InvalidRange", {"Content-Range": f"bytes */{size}"})
        if parsed:
            start, end, status = parsed[0], parsed[1], 206
    handler.send_response(status)
    handler.send_header("Content-Type", asset.content_type)
    handler.send_header("Content-Length", str(end - start))
    handler.send_header("Accept-Ranges", "bytes")
    if status == 206:
        handler.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
    handler.end_headers()
    if method == "HEAD":
        return
    stop = end
    if engine.fires("cut_downloads"):
        stop = start + (end - start) // 2  # the headers promised everything; half arrives, then the line drops
        engine.count("GET output", "cut")
    sent = 0
    try:
        for piece in asset.chunks(start, stop):
            handler.wfile.write(piece)
            sent += len(piece)
    finally:
        with engine.lock:
            engine.downloads["bytes_sent"] += sent
            engine.downloads["completed" if stop == end and sent == end - start else "incomplete"] += 1
    if stop < end:
        handler._drop_connection()


# -- /_sim/agents -------------------------------------------------------------------------------------------------

def _sim(handler, engine: AgentsEngine, method: str, path: str, query: str, raw: bytes) -> None:
    try:
        body = json.loads(raw) if raw.strip() else {}
    except ValueError:
        raise ApiError(400, "body must be JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "body must be a JSON object")
    route = (method, path.removeprefix(SIM_PREFIX) or "/")
    if route == ("GET", "/"):
        handler._send(200, {"endpoints": SIM_ENDPOINTS, "faults": {**CHANCE_FAULTS, **SECONDS_FAULTS}})
    elif route == ("GET", "/generations"):
        handler._send(200, {"generations": engine.all_generations()})
    elif route == ("GET", "/files"):
        handler._send(200, {"files": engine.files.all()})
    elif route == ("GET", "/stats"):
        handler._send(200, engine.stats())
    elif route == ("POST", "/reset"):
        engine.reset()
        handler._send(200, {"reset": True, "config": engine.public_config(), "faults": engine.faults.values})
    elif route[1] == "/config" and method in ("GET", "POST"):
        if method == "POST":
            try:
                engine.set_config(body)
            except ValueError as exc:
                raise ApiError(400, str(exc)) from None
        handler._send(200, engine.public_config())
    elif route[1] == "/faults" and method in ("GET", "POST"):
        if method == "POST":
            try:
                with engine.lock:
                    engine.faults.update(body)
            except ValueError as exc:
                raise ApiError(400, str(exc)) from None
        with engine.lock:
            handler._send(200, dict(engine.faults.values))
    elif (found := re.fullmatch(r"/generations/([^/]+)", route[1])) and method == "GET":
        with engine.lock:
            gen = engine.gens.get(found.group(1))
        if gen is None:
            raise ApiError(404, "Generation not found")
        described = engine.describe(gen)
        with engine.lock:
            handler._send(200, {**described, "generation": engine.to_api(gen)})
    elif (found := re.fullmatch(r"/generations/([^/]+)/finish", route[1])) and method == "POST":
        gen = engine.finish(found.group(1), body.get("state", "completed"), body.get("failure_code"),
                            body.get("failure_reason"))
        with engine.lock:
            handler._send(200, engine.to_api(gen))
    else:
        raise ApiError(404, "Not Found")


def _parse_range(spec: str, size: int):
    """(start, end) for one 'bytes=' range, None to ignore it (several ranges, bad syntax), or 'unsatisfiable'."""
    unit, _, ranges = spec.partition("=")
    if unit.strip().lower() != "bytes" or "," in ranges:
        return None
    first, _, last = ranges.strip().partition("-")
    try:
        if not first:
            length = int(last)
            return (max(0, size - length), size) if length > 0 else "unsatisfiable"
        start, end = int(first), (int(last) + 1 if last else size)
    except ValueError:
        return None
    return "unsatisfiable" if start >= size or end <= start else (start, min(end, size))
