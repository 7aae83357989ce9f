"""generations.luma_agents.AgentsClient against a tiny HTTP server on 127.0.0.1 that answers as told: every status
Luma's Agents API documents (section 9 of luma-agents-api.md), a read timeout and a connection reset. Each maps to
its typed error (luma_errors.py) with a readable message; reads are retried with back-off within their limits; a
create is never sent twice (the server sees one request, even on a 5xx or a reset)."""

import json
import socket
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO

import pytest

from generations import luma_agents
from generations.luma_agents import AgentsClient, LumaUploadUnfinished, generation_from_agents
from generations.luma_errors import (
    LumaAuthError,
    LumaConnectionError,
    LumaNotFound,
    LumaOutcomeUnknown,
    LumaPaymentError,
    LumaRateLimited,
    LumaRejected,
    LumaServerError,
    LumaTimeout,
)

pytestmark = pytest.mark.no_db

KEY = "luma-api-0123456789abcdef-secret"
GEN_ID = "d290f1ee-6c54-4b01-90e6-d701748f0851"
READ_TIMEOUT = 0.3  # seconds: the server's "timeout" answer waits longer than this
BODY = {"model": "ray-3.2", "type": "video", "prompt": "A lantern in the fog", "video": {"resolution": "720p"}}
COMPLETED = {"id": GEN_ID, "type": "video", "state": "completed", "model": "ray-3.2",
             "created_at": "2026-04-08T12:00:00Z", "failure_code": None, "failure_reason": None,
             "output": [{"type": "video", "url": "https://storage.example.com/generations/d290f1ee/output.mp4"}]}
# Luma's list-shaped detail (FastAPI's field errors) for a refused body.
LIST_DETAIL = {"detail": [{"type": "literal_error", "loc": ["body", "video", "duration"],
                           "msg": "Input should be '5s' or '10s'", "input": "7s"}]}


def status(code: int, body=None, headers: dict | None = None) -> tuple:
    return ("status", code, body, headers or {})


TIMEOUT, RESET = ("timeout",), ("reset",)


class Handler(BaseHTTPRequestHandler):
    """Answers each request with the next scripted answer (the last one repeats), after noting what it saw."""

    def do_GET(self):
        self.answer()

    def do_POST(self):
        self.answer()

    def answer(self):
        server = self.server
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with server.lock:
            server.seen.append((self.command, self.path, body, self.headers.get("Authorization")))
            action = server.script.pop(0) if len(server.script) > 1 else server.script[0]
        if action == TIMEOUT:
            time.sleep(READ_TIMEOUT * 4)
            action = status(200, COMPLETED)
        if action == RESET:
            # Close with a TCP reset once the request has been read, as a dropped connection looks to the client.
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            self.wfile, self.close_connection = BytesIO(), True
            return
        _, code, payload, headers = action
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode() if payload is not None else b""
        try:
            self.send_response(code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except OSError:
            pass  # the client stopped waiting (the timeout case)

    def log_message(self, *args):
        pass


class FakeAgents(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self):
        super().__init__(("127.0.0.1", 0), Handler)
        self.lock, self.seen, self.script = threading.Lock(), [], [status(200, COMPLETED)]

    def handle_error(self, request, client_address):
        pass

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def answers(self, *script) -> None:
        self.script = list(script)

    def requests(self, method: str | None = None) -> list[tuple]:
        return [(m, path) for m, path, _, _ in self.seen if method in (None, m)]


@pytest.fixture
def server():
    fake = FakeAgents()
    thread = threading.Thread(target=fake.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield fake
    fake.shutdown()
    fake.server_close()


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(server, sleeps):
    with AgentsClient(KEY, server.base_url, timeout=(2.0, READ_TIMEOUT), get_retries=3, backoff=0.5,
                      sleep=sleeps.append) as client:
        yield client


REFUSALS = [
    (400, {"detail": "Unknown model: ray-9"}, LumaRejected, "Luma rejected the request (400): Unknown model: ray-9"),
    (401, {"detail": "Invalid API key"}, LumaAuthError, "Luma rejected the API key (401): Invalid API key"),
    (402, {"detail": "Insufficient credits. Please add credits to continue."}, LumaPaymentError,
     "out of credit (402): Insufficient credits. Please add credits to continue."),
    (403, {"detail": "API client is suspended"}, LumaPaymentError, "not allowed (403): API client is suspended"),
    (404, {"detail": "Generation not found"}, LumaNotFound, "(404): Generation not found"),
    (422, LIST_DETAIL, LumaRejected, "Luma rejected the request (422): video.duration: Input should be '5s' or '10s'"),
]


@pytest.mark.parametrize("code, body, error, words", REFUSALS)
def test_a_refused_create_is_a_typed_error_in_lumas_words_and_sent_once(server, client, sleeps, code, body, error,
                                                                         words):
    server.answers(status(code, body))

    with pytest.raises(error) as raised:
        client.create(BODY)

    assert words in str(raised.value) and raised.value.status == code
    assert not raised.value.retryable and KEY not in str(raised.value)
    assert server.requests() == [("POST", "/v1/generations")] and sleeps == []


@pytest.mark.parametrize("code, body, error, words", REFUSALS)
def test_a_refused_read_is_not_retried(server, client, sleeps, code, body, error, words):
    server.answers(status(code, body))

    with pytest.raises(error) as raised:
        client.get(GEN_ID)

    assert words in str(raised.value)
    if code == 404:
        assert str(raised.value).startswith(f"Luma has nothing at GET /generations/{GEN_ID} (404)")
    assert len(server.requests()) == 1 and sleeps == []


@pytest.mark.parametrize("detail, retry_after", [("Rate limit exceeded", "7"), ("Too many concurrent jobs", "60")])
def test_a_429_on_create_says_how_long_to_wait_and_is_not_resent(server, client, sleeps, detail, retry_after):
    server.answers(status(429, {"detail": detail}, {"Retry-After": retry_after, "X-RateLimit-Remaining": "0"}))

    with pytest.raises(LumaRateLimited) as raised:
        client.create(BODY)

    assert raised.value.retry_after == float(retry_after) and raised.value.retryable
    assert str(raised.value) == f"Luma is rate limiting us (429); try again in {retry_after} s: {detail}"
    assert server.requests() == [("POST", "/v1/generations")] and sleeps == []


@pytest.mark.parametrize("detail, retry_after, waited", [("Rate limit exceeded", "7", 7.0),
                                                         ("Too many concurrent jobs", "60", 30.0)])
def test_a_read_after_a_429_waits_what_luma_asked_at_most_30_s_then_succeeds(server, client, sleeps, detail,
                                                                            retry_after, waited):
    server.answers(status(429, {"detail": detail}, {"Retry-After": retry_after}), status(200, COMPLETED))

    generation = client.get(GEN_ID)

    assert generation.state == "completed" and generation.video_url.endswith("output.mp4")
    assert sleeps == [waited] and len(server.requests("GET")) == 2


@pytest.mark.parametrize("code, detail", [(500, "Internal Server Error"), (502, "Upstream service unavailable"),
                                          (503, "Image URL ingestion unavailable")])
def test_a_read_is_retried_on_5xx_with_growing_back_off_then_gives_up_readably(server, client, sleeps, code, detail):
    server.answers(status(code, {"detail": detail}))

    with pytest.raises(LumaServerError) as raised:
        client.get(GEN_ID)

    assert str(raised.value) == f"Luma had a server error ({code}) on GET /generations/{GEN_ID}: {detail}"
    assert raised.value.retryable
    assert len(server.requests("GET")) == 3  # get_retries attempts in all
    first, second = sleeps
    assert 0.375 <= first <= 0.5 and 0.75 <= second <= 1.0  # backoff 0.5 s, doubled, with jitter


def test_a_read_recovers_after_a_5xx(server, client, sleeps):
    server.answers(status(502, {"detail": "Upstream service unavailable"}), status(200, COMPLETED))

    assert client.get(GEN_ID).state == "completed"
    assert len(server.requests("GET")) == 2 and len(sleeps) == 1


@pytest.mark.parametrize("code", [500, 502, 503])
def test_a_create_answered_with_5xx_is_sent_once_and_its_outcome_is_unknown(server, client, sleeps, code):
    server.answers(status(code, {"detail": "Upstream service unavailable"}))

    with pytest.raises(LumaOutcomeUnknown) as raised:
        client.create(BODY)

    assert f"Luma answered {code}" in str(raised.value) and "It was not sent again" in str(raised.value)
    assert not raised.value.retryable and raised.value.maybe_created
    assert server.requests() == [("POST", "/v1/generations")] and sleeps == []


def test_a_read_that_times_out_is_retried_then_says_so(server, client, sleeps):
    server.answers(TIMEOUT)

    with pytest.raises(LumaTimeout) as raised:
        client.get(GEN_ID)

    assert str(raised.value) == f"Luma did not answer GET /generations/{GEN_ID} within {READ_TIMEOUT:g} s."
    assert len(server.requests("GET")) == 3 and len(sleeps) == 2


def test_a_read_that_timed_out_once_succeeds_on_the_next_attempt(server, client, sleeps):
    server.answers(TIMEOUT, status(200, COMPLETED))

    assert client.get(GEN_ID).state == "completed"
    assert len(server.requests("GET")) == 2


def test_a_create_that_times_out_is_sent_once_and_its_outcome_is_unknown(server, client, sleeps):
    server.answers(TIMEOUT)

    with pytest.raises(LumaOutcomeUnknown) as raised:
        client.create(BODY)

    assert f"no answer within {READ_TIMEOUT:g} s" in str(raised.value)
    assert server.requests() == [("POST", "/v1/generations")] and sleeps == []


def test_a_read_whose_connection_is_reset_is_retried_then_says_so(server, client, sleeps):
    server.answers(RESET)

    with pytest.raises(LumaConnectionError) as raised:
        client.get(GEN_ID)

    assert str(raised.value).startswith(f"The connection to Luma broke during GET /generations/{GEN_ID} (")
    assert len(server.requests("GET")) == 3 and len(sleeps) == 2


def test_a_read_recovers_after_a_reset(server, client, sleeps):
    server.answers(RESET, status(200, COMPLETED))

    assert client.get(GEN_ID).state == "completed"
    assert len(server.requests("GET")) == 2


def test_a_create_whose_connection_is_reset_is_sent_once_and_its_outcome_is_unknown(server, client, sleeps):
    server.answers(RESET)

    with pytest.raises(LumaOutcomeUnknown) as raised:
        client.create(BODY)

    assert "the connection broke" in str(raised.value) and "could bill twice" in str(raised.value)
    assert server.requests() == [("POST", "/v1/generations")] and sleeps == []


def test_a_create_where_nothing_listens_says_nothing_was_sent(sleeps):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    client = AgentsClient(KEY, f"http://127.0.0.1:{port}/v1", timeout=(2.0, READ_TIMEOUT), sleep=sleeps.append)

    with pytest.raises(LumaConnectionError) as raised:
        client.create(BODY)

    assert "nothing was sent" in str(raised.value) and raised.value.retryable and sleeps == []


def test_a_create_sends_the_body_once_with_the_key_and_reads_the_answer(server, client):
    server.answers(status(201, {**COMPLETED, "state": "queued", "output": []}))

    generation = client.create(BODY)

    assert (generation.id, generation.state) == (GEN_ID, "queued")
    ((method, path, body, auth),) = server.seen
    assert (method, path, json.loads(body), auth) == ("POST", "/v1/generations", BODY, f"Bearer {KEY}")


def test_a_failed_generation_reads_its_failure_code_in_the_reason():
    generation = generation_from_agents({**COMPLETED, "state": "failed", "output": [],
                                         "failure_code": "content_moderated", "failure_reason": "Flagged"})

    assert generation.state == "failed" and generation.failure_reason == "Flagged (content_moderated)"
    assert generation_from_agents({**COMPLETED, "state": "processing"}).state == "dreaming"


# --- Files API: nothing billable, so a failing upload is retried later by the caller, never refused ----------


@pytest.mark.parametrize("answer", [status(503, {"detail": "Service Unavailable"}), RESET])
def test_an_upload_whose_post_files_fails_is_unfinished_not_refused_and_sent_once(server, client, sleeps, tmp_path,
                                                                                 answer):
    image = tmp_path / "frame.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    server.answers(answer)

    with pytest.raises(LumaConnectionError) as raised:
        client.upload_file(image, "image/png")

    assert raised.value.retryable  # the submit puts the row back in the queue (tasks.submit)
    if answer != RESET:
        assert isinstance(raised.value, LumaUploadUnfinished)
        assert str(raised.value) == ("the upload of frame.png to Luma's Files API did not finish: Luma had a server "
                                     "error (503) on POST /files: Service Unavailable")
    assert server.requests() == [("POST", "/v1/files")]


def test_an_upload_luma_is_still_reading_is_unfinished_then_resumed_without_uploading_again(server, client, sleeps,
                                                                                          tmp_path, monkeypatch):
    monkeypatch.setattr(luma_agents, "FILE_READY_SECONDS", 0.0)
    monkeypatch.setattr(luma_agents, "put_upload", lambda *args, **kwargs: _Answered())
    image = tmp_path / "frame.png"
    image.write_bytes(b"\x89PNG\r\n\x1a\n" + b"0" * 100)
    file = {"id": "f-1", "state": "pending"}
    server.answers(status(201, {**file, "upload": {"url": "https://storage.example.com/u/f-1"}}),
                   status(200, file), status(200, file), status(200, file), status(200, {**file, "state": "ready"}))

    with pytest.raises(LumaUploadUnfinished) as raised:
        client.upload_file(image, "image/png")
    assert str(raised.value).startswith("Luma was still reading the uploaded file frame.png after 0 s")

    assert client.upload_file(image, "image/png") == "f-1"
    assert server.requests() == [("POST", "/v1/files"), ("POST", "/v1/files/f-1/complete"), ("GET", "/v1/files/f-1"),
                                 ("GET", "/v1/files/f-1"), ("GET", "/v1/files/f-1")]


class _Answered:
    ok, status_code = True, 200

    def close(self):
        pass

