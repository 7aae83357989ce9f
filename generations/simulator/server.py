"""HTTP front of the Luma simulator: Luma's API under /dream-machine/v1, asset files under /assets, and the
simulator-only introspection API under /_sim (no auth); agents_server.py serves the Agents API under /agents.
Stdlib ThreadingHTTPServer, HTTP/1.1 keep-alive.
"""

import json
import logging
import re
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from . import agents_server
from .engine import Engine
from .validation import CONCEPTS, ApiError

API_PREFIX = "/dream-machine/v1"
log = logging.getLogger("lumasim")

CAMERA_MOTIONS = [
    "camera orbit left", "camera orbit right", "camera push in", "camera pull out", "camera pan left",
    "camera pan right", "camera tilt up", "camera tilt down", "camera zoom in", "camera zoom out",
    "camera crane up", "camera crane down", "camera truck left", "camera truck right", "camera static",
    "camera handheld", "camera dolly zoom",
]

# (method, path template, handler name, create kind). Literal paths win over "{id}" ones, as in FastAPI.
ROUTES = [
    ("POST", "/generations", "create", "video"),  # legacy path of SDKs before 1.11
    ("POST", "/generations/video", "create", "video"),
    ("POST", "/generations/image", "create", "image"),
    ("POST", "/generations/video/modify", "create", "modify_video"),
    ("POST", "/generations/video/reframe", "create", "reframe_video"),
    ("POST", "/generations/image/reframe", "create", "reframe_image"),
    ("POST", "/generations/{id}/upscale", "create", "upscale_video"),
    ("POST", "/generations/{id}/audio", "create", "add_audio"),
    ("GET", "/generations", "list", None),
    ("GET", "/generations/concepts/list", "concepts", None),
    ("GET", "/generations/camera_motion/list", "camera_motions", None),
    ("GET", "/generations/{id}", "get", None),
    ("DELETE", "/generations/{id}", "delete", None),
    ("GET", "/credits", "credits", None),
    ("GET", "/ping", "ping", None),
]
_COMPILED = [(m, t, h, k, re.compile("^" + t.replace("{id}", "(?P<id>[^/]+)") + "$")) for m, t, h, k in ROUTES]


def match_route(path: str):
    """(route, params, allowed methods) for an API path; literal templates shadow "{id}" ones."""
    hits = [(r, m.groupdict()) for r in _COMPILED if (m := r[4].match(path))]
    literal = [h for h in hits if "{id}" not in h[0][1]]
    hits = literal or hits
    return hits, sorted({h[0][0] for h in hits})


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address, engine: Engine):
        super().__init__(address, Handler)
        self.engine = engine


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "LumaSimulator/1.0"
    sys_version = ""
    timeout = 600  # an idle keep-alive connection gives its thread back after ten minutes

    # -- plumbing ---------------------------------------------------------------------------------------------

    def log_message(self, fmt, *args):
        log.info("%s %s", self.address_string(), fmt % args)

    def log_request(self, code="-", size="-"):
        # The request line only (never headers: they carry the API key).
        log.info('"%s" %s', self.requestline, code)

    def do_GET(self):
        self._dispatch("GET")

    def do_HEAD(self):
        self._dispatch("HEAD")

    def do_POST(self):
        self._dispatch("POST")

    def do_DELETE(self):
        self._dispatch("DELETE")

    def do_PUT(self):
        self._dispatch("PUT")

    def do_PATCH(self):
        self._dispatch("PATCH")

    @property
    def engine(self) -> Engine:
        return self.server.engine

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _send(self, status: int, payload=None, headers: dict | None = None) -> None:
        body = b"" if payload is None or status == 204 else json.dumps(payload).encode()
        self.send_response(status)
        if body:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _error(self, exc: ApiError) -> None:
        self._send(exc.status, {"detail": exc.detail}, exc.headers)

    def _drop_connection(self) -> None:
        """Close without answering (or mid-answer): what a lost response looks like to the client."""
        self.close_connection = True
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def _dispatch(self, method: str) -> None:
        started = time.monotonic()
        try:
            body = self._read_body()
            parts = urlsplit(self.path)
            path = unquote(parts.path).rstrip("/") or "/"
            if path == API_PREFIX or path.startswith(API_PREFIX + "/"):
                self._api(method, path[len(API_PREFIX):] or "/", parts.query, body)
            elif agents_server.handles(path):  # the Agents API, its storage URLs and /_sim/agents
                agents_server.dispatch(self, method, path, parts.query, body)
            elif path.startswith("/assets/"):
                self._asset(method, path, parts.query)
            elif path == "/_sim" or path.startswith("/_sim/"):
                self._sim(method, path, parts.query, body)
            else:
                self._send(404, {"detail": "Not Found"})
        except ApiError as exc:
            self._error(exc)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
        except Exception:  # answer 500 and keep serving, as a real server would
            log.exception("error while answering %s %s", method, self.path)
            try:
                self._send(500, {"detail": "Internal Server Error"})
            except OSError:
                self.close_connection = True
        finally:
            log.debug("%s %s took %.1f ms", method, self.path, (time.monotonic() - started) * 1000)

    # -- Luma's API -------------------------------------------------------------------------------------------

    def _authorized(self) -> bool:
        scheme, _, key = self.headers.get("Authorization", "").partition(" ")
        key = key.strip()
        allowed = self.engine.config.api_keys
        return scheme.lower() == "bearer" and bool(key) and (not allowed or key in allowed)

    def _api(self, method: str, path: str, query: str, raw: bytes) -> None:
        hits, allowed = match_route(path)
        if not hits:
            raise ApiError(404, "Not Found")
        chosen = [h for h in hits if h[0][0] == method]
        if not chosen:
            raise ApiError(405, "Method Not Allowed", {"Allow": ", ".join(allowed)})
        (_m, template, handler, kind, _rx), params = chosen[0]
        engine = self.engine
        engine.count_request(f"{method} {template}", params.get("id"))
        if not self._authorized():
            raise ApiError(401, "Invalid API key", {"WWW-Authenticate": "Bearer"})
        if handler == "create":
            engine.note_create_attempt(_peek_callback_url(raw))
        faults = engine.faults
        if faults.seconds("slow_responses"):
            time.sleep(faults.seconds("slow_responses"))
        if engine.fires("burst_429"):
            raise ApiError(429, "Too Many Requests", {"Retry-After": "1"})
        if handler == "list" and engine.fires("list_500_for"):
            raise ApiError(500, "Internal Server Error")  # Luma's list has been seen failing for a long stretch
        if method == "GET" and engine.fires("get_5xx"):
            status = (500, 502, 503)[int(engine._roll() * 3)]
            raise ApiError(status, "Internal Server Error")
        if handler == "create":
            self._create(kind, raw, params.get("id"))
        elif handler == "get":
            gen = engine.visible(params["id"])
            with engine.lock:
                self._send(200, engine.to_api(gen))
        elif handler == "delete":
            engine.delete(params["id"])
            self._send(204)
        elif handler == "list":
            limit = _query_int(query, "limit", 10, minimum=1)
            offset = _query_int(query, "offset", 0, minimum=0)
            self._send(200, engine.page(min(limit, 100), offset))
        elif handler == "concepts":
            self._send(200, list(CONCEPTS))
        elif handler == "camera_motions":
            self._send(200, CAMERA_MOTIONS)
        elif handler == "credits":
            with engine.lock:
                self._send(200, {"credit_balance": float(engine.balance)})
        elif handler == "ping":
            self._send(200, {"message": "pong"})

    def _create(self, kind: str, raw: bytes, source_id: str | None) -> None:
        engine = self.engine
        if not raw.strip():
            body = None
        else:
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError) as exc:
                position = getattr(exc, "pos", 0)
                reason = getattr(exc, "msg", str(exc))
                raise ApiError(422, [{"type": "json_invalid", "loc": ["body", position], "msg": "JSON decode error",
                                      "input": {}, "ctx": {"error": reason}}]) from None
        gen = engine.create(kind, body, source_id)
        if kind == "image" and isinstance(body, dict) and body.get("sync"):
            timeout = body.get("sync_timeout") or 60
            engine.wait_until_done(gen.id, min(float(timeout), 300.0))
        if engine.fires("drop_after_create"):
            self._drop_connection()
            return
        with engine.lock:
            payload = engine.to_api(gen)
        self._send(201, payload)

    # -- assets -----------------------------------------------------------------------------------------------

    def _asset(self, method: str, path: str, query: str) -> None:
        engine = self.engine
        if method not in ("GET", "HEAD"):
            raise ApiError(405, "Method Not Allowed", {"Allow": "GET, HEAD"})
        pieces = path.split("/")
        if len(pieces) != 4:
            raise ApiError(404, "Not Found")
        engine.count_asset("requests")
        engine.check_signature(path, query)
        asset = engine.asset(pieces[2], pieces[3])
        size = asset.size
        start, end, status = 0, size, 200
        spec = self.headers.get("Range")
        if spec:
            parsed = _parse_range(spec, size)
            if parsed == "unsatisfiable":
                raise ApiError(416, "Range Not Satisfiable", {"Content-Range": f"bytes */{size}"})
            if parsed:
                start, end, status = parsed[0], parsed[1], 206
        self.send_response(status)
        self.send_header("Content-Type", asset.content_type)
        self.send_header("Content-Length", str(end - start))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Cache-Control", "private, max-age=3600")
        if status == 206:
            self.send_header("Content-Range", f"bytes {start}-{end - 1}/{size}")
        self.end_headers()
        if method == "HEAD":
            return
        engine.count_asset("downloads")
        stop = end
        if engine.fires("cut_downloads"):
            stop = start + (end - start) // 2  # the headers promised everything; half arrives, then the line drops
            engine.count_asset("cut")
        sent = 0
        try:
            for piece in asset.chunks(start, stop):
                rate = engine.config.asset_rate  # read per piece: a test may lift the throttle mid-download
                if rate:
                    time.sleep(len(piece) / rate)
                self.wfile.write(piece)
                sent += len(piece)
        finally:
            engine.count_asset("bytes_sent", sent)
        if stop < end:
            self._drop_connection()

    # -- /_sim: the simulator's own API ----------------------------------------------------------------------

    def _sim(self, method: str, path: str, query: str, raw: bytes) -> None:
        engine = self.engine
        try:
            body = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise ApiError(400, "body must be JSON") from None
        if not isinstance(body, dict):
            raise ApiError(400, "body must be a JSON object")
        params = {k: v[-1] for k, v in parse_qs(query).items()}
        route = (method, path)
        if route == ("GET", "/_sim"):
            self._send(200, {"endpoints": SIM_ENDPOINTS, "faults": engine.faults.describe()})
        elif route == ("GET", "/_sim/generations"):
            self._send(200, {"generations": engine.all_generations()})
        elif route == ("GET", "/_sim/creates"):
            self._send(200, engine.creates(params.get("callback_url_contains", "")))
        elif route == ("GET", "/_sim/stats"):
            self._send(200, engine.stats())
        elif route == ("GET", "/_sim/callbacks"):
            self._send(200, engine.dispatcher.snapshot(params.get("generation_id")))
        elif route == ("POST", "/_sim/reset"):
            engine.reset()
            agents_server.reset(self.server)
            self._send(200, {"reset": True, "config": engine.public_config(), "faults": engine.faults.as_dict()})
        elif path == "/_sim/config" and method in ("GET", "POST"):
            if method == "POST":
                try:
                    engine.set_config(body)
                except ValueError as exc:
                    raise ApiError(400, str(exc)) from None
            self._send(200, engine.public_config())
        elif path == "/_sim/faults" and method in ("GET", "POST"):
            if method == "POST":
                try:
                    engine.faults.update(body)
                except ValueError as exc:
                    raise ApiError(400, str(exc)) from None
            self._send(200, engine.faults.as_dict())
        elif (m := re.fullmatch(r"/_sim/generations/([^/]+)", path)) and method == "GET":
            gen = engine.visible(m.group(1))
            with engine.lock:
                api = engine.to_api(gen)
            self._send(200, {**engine.describe(gen), "generation": api})
        elif (m := re.fullmatch(r"/_sim/generations/([^/]+)/finish", path)) and method == "POST":
            state = body.get("state", "completed")
            gen = engine.finish(m.group(1), state, body.get("failure_reason"))
            with engine.lock:
                self._send(200, engine.to_api(gen))
        else:
            raise ApiError(404, "Not Found")


SIM_ENDPOINTS = {
    "GET /_sim/generations": "every generation: id, seq (creation order), state, failure_reason, callback_url, sha256",
    "GET /_sim/generations/<id>": "one generation, with its API JSON",
    "POST /_sim/generations/<id>/finish": '{"state": "completed"|"failed"|"dreaming", "failure_reason": ...}',
    "GET /_sim/creates?callback_url_contains=TOKEN": "creates whose callback_url contains TOKEN: count, ids, attempts",
    "GET /_sim/stats": "API requests per endpoint and per generation id, asset and callback counters",
    "GET /_sim/callbacks?generation_id=ID": "every callback delivery with its outcome",
    "POST /_sim/reset": "forget everything; settings and faults return to their startup values",
    "GET|POST /_sim/config": "durations, time scale, limits, asset bytes, failure rate, credits",
    "GET|POST /_sim/faults": "fault injection (see 'faults')",
}


def _peek_callback_url(raw: bytes):
    try:
        body = json.loads(raw)
    except ValueError:
        return None
    return body.get("callback_url") if isinstance(body, dict) else None


def _query_int(query: str, name: str, default: int, minimum: int) -> int:
    values = parse_qs(query).get(name)
    if not values:
        return default
    raw = values[-1]
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(422, [{"type": "int_parsing", "loc": ["query", name], "input": raw,
                              "msg": "Input should be a valid integer, unable to parse string as an integer"}]) from None
    if value < minimum:
        raise ApiError(422, [{"type": "greater_than_equal", "loc": ["query", name], "input": raw,
                              "msg": f"Input should be greater than or equal to {minimum}", "ctx": {"ge": minimum}}])
    return value


def _parse_range(spec: str, size: int):
    """(start, end) for one 'bytes=' range, None to ignore it (several ranges, bad syntax), or 'unsatisfiable'."""
    unit, _, ranges = spec.partition("=")
    if unit.strip().lower() != "bytes" or "," in ranges:
        return None
    first, _, last = ranges.strip().partition("-")
    try:
        if not first:
            length = int(last)
            if length <= 0:
                return "unsatisfiable"
            return max(0, size - length), size
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if start >= size or end <= start:
        return "unsatisfiable"
    return start, min(end, size)
