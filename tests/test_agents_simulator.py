"""The simulator's Agents API (luma-agents-api.md section 17) over real HTTP: keys as namespaces, the lifecycle with
failure codes, signed output URLs that expire, both 429s with their exact headers, the Files API, references fetched
at submit time, every type's rules and media that match the request, faults and /_sim/agents."""

import base64
import hashlib
import io
import json
import threading
import time
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import av
import pytest
import requests
from PIL import Image

from tests.plugins import stack
from tests.plugins.simulator import start_simulator, stop_simulator

pytestmark = [pytest.mark.timeout(90), pytest.mark.no_db]

ALICE, BOB = "luma-api-sim-alice", "luma-api-sim-bob"
wait_until = partial(stack.wait_until, interval=0.02)
PNG_1x1 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4nGP4z8DwHwAFAAH/iZk9HQAAAABJRU5ErkJggg==")


class Agents:
    """Test-side handle: Luma's Agents API at base_url with one key, /_sim/agents through small methods."""

    def __init__(self, root: str, key: str = ALICE):
        self.root, self.base_url, self.key = root, f"{root}/agents", key
        self.headers = {"Authorization": f"Bearer {key}"}

    def as_key(self, key: str) -> "Agents":
        return Agents(self.root, key)

    def post(self, path: str, **kwargs) -> requests.Response:
        return requests.post(f"{self.base_url}{path}", headers={**self.headers, **kwargs.pop("headers", {})},
                             timeout=20, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(f"{self.base_url}{path}", headers={**self.headers, **kwargs.pop("headers", {})},
                            timeout=20, **kwargs)

    def create(self, **body) -> dict:
        answer = self.post("/generations", json=body)
        assert answer.status_code == 201, answer.text
        return answer.json()

    def sim(self, method: str, path: str, **kwargs):
        answer = requests.request(method, f"{self.root}/_sim/agents{path}", timeout=30, **kwargs)
        answer.raise_for_status()
        return answer.json()

    def config(self, **changes) -> dict:
        return self.sim("POST", "/config", json=changes)

    def faults(self, **changes) -> dict:
        return self.sim("POST", "/faults", json=changes)

    def finish(self, gen_id: str, state: str = "completed", **extra) -> dict:
        return self.sim("POST", f"/generations/{gen_id}/finish", json={"state": state, **extra})

    def done(self, gen_id: str) -> dict:
        """Finish it now and read it back through the API."""
        self.finish(gen_id)
        return self.get(f"/generations/{gen_id}").json()

    def wait(self, gen_id: str, timeout: float = 15) -> tuple[dict, list[str]]:
        """Poll until terminal; returns the last answer and every state seen in order."""
        seen, deadline = [], time.monotonic() + timeout
        while time.monotonic() < deadline:
            body = self.get(f"/generations/{gen_id}").json()
            if not seen or seen[-1] != body["state"]:
                seen.append(body["state"])
            if body["state"] in ("completed", "failed"):
                return body, seen
            time.sleep(0.03)
        pytest.fail(f"{gen_id} still {seen[-1]} after {timeout} s")


@pytest.fixture
def agents(luma_sim) -> Agents:
    """A fresh simulator (POST /_sim/reset resets the Agents side too) seen with Alice's key."""
    return Agents(luma_sim.root)


@pytest.fixture
def slow(agents) -> Agents:
    agents.config(queued_seconds=600)  # nothing moves unless the test finishes it
    return agents


def download(url: str) -> bytes:
    answer = requests.get(url, timeout=30)
    assert answer.status_code == 200, answer.text
    return answer.content


def video_shape(data: bytes) -> tuple[int, int, float, str]:
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        return stream.width, stream.height, round(container.duration / 1_000_000, 1), stream.format.name


@pytest.fixture
def origin():
    """A loopback web server for reference URLs: /fox.png (an image), /page (HTML), /clip.mp4, anything else 404."""
    files = {"/fox.png": (b"image/png", PNG_1x1), "/page": (b"text/html", b"<html></html>"),
             "/broken.png": (b"image/png", b"not a png")}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            found = files.get(self.path)
            self.send_response(200 if found else 404)
            body = found[1] if found else b"missing"
            self.send_header("Content-Type", found[0].decode() if found else "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", files
    server.shutdown()
    server.server_close()


# -- transport, keys ---------------------------------------------------------------------------------------------

def test_every_answer_carries_the_api_version_and_echoes_the_request_id(agents):
    made = agents.post("/generations", json={"prompt": "A fox"}, headers={"X-Request-Id": "trace-123"})
    refused = agents.post("/generations", json={"prompt": ""})
    missing = agents.get("/generations/not-a-uuid")
    anonymous = requests.get(f"{agents.base_url}/generations/x", timeout=5)

    for answer in (made, refused, missing, anonymous):
        assert answer.headers["X-API-Version"] == "2026-04-01"
        assert answer.headers["X-Request-Id"]
    assert made.headers["X-Request-Id"] == "trace-123"
    assert len({refused.headers["X-Request-Id"], missing.headers["X-Request-Id"]}) == 2
    assert made.status_code == 201 and made.headers["X-RateLimit-Limit"] == "30"
    assert made.headers["X-RateLimit-Remaining"] == "29"
    assert "X-RateLimit-Limit" not in refused.headers and "X-RateLimit-Limit" not in missing.headers


@pytest.mark.parametrize(("header", "detail"), [
    (None, "Missing or invalid API key"),
    ("Bearer sk-something", "Missing or invalid API key"),
    ("Token luma-api-x", "Missing or invalid API key"),
    ("Bearer luma-api-old-revoked", "API key has been revoked"),
    ("Bearer luma-api-old-expired", "API key has expired"),
])
def test_bad_keys_get_lumas_401_texts(agents, header, detail):
    headers = {"Authorization": header} if header else {}
    answer = requests.post(f"{agents.base_url}/generations", json={"prompt": "A fox"}, headers=headers, timeout=5)
    assert (answer.status_code, answer.json()) == (401, {"detail": detail})


def test_each_key_is_its_own_namespace(slow):
    mine = slow.create(prompt="A fox")
    upload = slow.post("/files", json={"mime_type": "image/png", "size_bytes": 10}).json()
    bob = slow.as_key(BOB)

    assert bob.get(f"/generations/{mine['id']}").json() == {"detail": "Generation not found"}
    assert bob.get(f"/files/{upload['id']}").json() == {"detail": "File not found"}
    assert bob.get("/files").json()["data"] == []
    assert slow.get(f"/generations/{mine['id']}").status_code == 200
    listed = slow.sim("GET", "/generations")["generations"]
    assert [(g["id"], g["key"]) for g in listed] == [(mine["id"], ALICE)]


# -- lifecycle, outputs ------------------------------------------------------------------------------------------

def test_an_image_goes_queued_processing_completed_as_a_2k_png_by_default(agents):
    made = agents.create(prompt="A red fox in a birch forest")
    done, seen = agents.wait(made["id"])

    assert made["state"] == "queued" and made["output"] == [] and made["model"] == "uni-1"
    assert made["type"] == "image" and made["failure_code"] is None and made["created_at"].endswith("Z")
    assert seen == ["queued", "processing", "completed"]
    assert [o["type"] for o in done["output"]] == ["image"]
    picture = Image.open(io.BytesIO(download(done["output"][0]["url"])))
    assert (picture.format, picture.size) == ("PNG", (2048, 1152))


@pytest.mark.parametrize(("aspect", "fmt", "expected"), [
    ("1:3", "jpeg", ("JPEG", (682, 2048))), ("3:1", "png", ("PNG", (2048, 682))), ("1:1", None, ("PNG", (2048, 2048))),
])
def test_images_honour_aspect_ratio_and_output_format(slow, aspect, fmt, expected):
    made = slow.create(prompt="A fox", model="uni-1-max", aspect_ratio=aspect, output_format=fmt)
    done = slow.done(made["id"])
    picture = Image.open(io.BytesIO(download(done["output"][0]["url"])))
    assert (picture.format, picture.size) == expected


@pytest.mark.parametrize("code", ["content_moderated", "budget_exhausted", "corrupt_input", "rate_limited"])
def test_a_prompt_marker_forces_a_failure_code(agents, code):
    made = agents.create(prompt=f"A fox [sim-fail:{code}]")
    done, seen = agents.wait(made["id"])
    assert seen[-1] == "failed" and done["failure_code"] == code
    assert done["failure_reason"] and done["output"] == []


def test_an_unknown_failure_marker_is_refused(agents):
    answer = agents.post("/generations", json={"prompt": "A fox [sim-fail:oops]"})
    assert answer.status_code == 400 and "oops" in answer.json()["detail"]


def test_output_urls_are_signed_afresh_need_no_key_and_expire(slow):
    made = slow.create(prompt="A fox")
    first = slow.done(made["id"])["output"][0]["url"]
    time.sleep(1.05)
    second = slow.get(f"/generations/{made['id']}").json()["output"][0]["url"]
    tampered = second.replace("X-Amz-Expires=3600", "X-Amz-Expires=9999")

    assert first != second and "X-Amz-Expires=3600" in second
    assert download(first) == download(second)
    assert requests.get(tampered, timeout=5).status_code == 403
    # 2 s, not 1: X-Amz-Date has whole seconds, so a URL lives between lifetime - 1 and lifetime seconds.
    slow.faults(expire_output_urls=2)
    short = slow.get(f"/generations/{made['id']}").json()["output"][0]["url"]
    assert requests.get(short, timeout=5).status_code == 200
    time.sleep(3.1)
    expired = requests.get(short, timeout=5)
    assert expired.status_code == 403 and b"Request has expired" in expired.content
    assert requests.get(slow.get(f"/generations/{made['id']}").json()["output"][0]["url"], timeout=5).ok


# -- limits ------------------------------------------------------------------------------------------------------

def test_the_rpm_window_answers_429_with_sections_10_headers(slow):
    slow.config(requests_per_minute=2)
    slow.create(prompt="one")
    assert slow.post("/generations", json={"prompt": ""}).status_code == 400  # refused ones do not count
    second = slow.post("/generations", json={"prompt": "two"})
    third = slow.post("/generations", json={"prompt": "three"})

    assert second.headers["X-RateLimit-Remaining"] == "0"
    assert (third.status_code, third.json()) == (429, {"detail": "Rate limit exceeded"})
    assert third.headers["X-RateLimit-Limit"] == "2" and third.headers["X-RateLimit-Remaining"] == "0"
    assert 55 <= int(third.headers["Retry-After"]) <= 60
    assert abs(int(third.headers["X-RateLimit-Reset"]) - (time.time() + int(third.headers["Retry-After"]))) <= 2
    assert slow.as_key(BOB).post("/generations", json={"prompt": "bob's own window"}).status_code == 201
    assert len(slow.sim("GET", "/generations")["generations"]) == 3


def test_the_concurrency_limit_answers_429_with_retry_after_60_until_a_job_ends(slow):
    slow.config(concurrent_jobs=2)
    first = slow.create(prompt="one")
    slow.create(prompt="two")
    refused = slow.post("/generations", json={"prompt": "three"})
    slow.finish(first["id"], "failed", failure_code="generation_failed")
    after = slow.post("/generations", json={"prompt": "three again"})

    assert (refused.status_code, refused.json()) == (429, {"detail": "Too many concurrent jobs"})
    assert refused.headers["Retry-After"] == "60"
    assert not any(name.lower().startswith("x-ratelimit") for name in refused.headers)
    assert after.status_code == 201


# -- files -------------------------------------------------------------------------------------------------------

def test_a_presigned_upload_becomes_a_ready_file_a_generation_can_use(agents):
    created = agents.post("/files", json={"mime_type": "image/png", "size_bytes": len(PNG_1x1),
                                          "filename": "fox.png", "purpose": "reference"})
    body = created.json()
    upload = body["upload"]
    early = agents.post(f"/files/{body['id']}/complete")
    put = requests.put(upload["url"], data=PNG_1x1, headers=upload["headers"], timeout=5)
    completed = agents.post(f"/files/{body['id']}/complete").json()
    deadline = time.monotonic() + 10
    while agents.get(f"/files/{body['id']}").json()["state"] == "pending" and time.monotonic() < deadline:
        time.sleep(0.03)
    ready = agents.get(f"/files/{body['id']}").json()
    made = agents.post("/generations", json={"prompt": "Like this", "image_ref": [{"file_id": body["id"]}]})

    assert created.status_code == 201 and body["state"] == "pending" and body["file"]["id"] == body["id"]
    assert upload["method"] == "PUT" and upload["headers"] == {"Content-Type": "image/png"}
    assert (early.status_code, early.json()["detail"]) == (400, "Upload not received: PUT the bytes to the upload "
                                                                "URL first")
    assert put.status_code == 200 and completed["state"] == "pending"
    assert (ready["state"], ready["filename"], ready["purpose"]) == ("ready", "fox.png", "reference")
    assert made.status_code == 201


def test_uploads_need_a_valid_signature_and_the_declared_size(agents):
    body = agents.post("/files", json={"mime_type": "image/png", "size_bytes": 999}).json()
    upload = body["upload"]
    wrong_type = requests.put(upload["url"], data=PNG_1x1, headers={"Content-Type": "image/jpeg"}, timeout=5)
    requests.put(upload["url"], data=PNG_1x1, headers=upload["headers"], timeout=5)
    agents.post(f"/files/{body['id']}/complete")
    deadline = time.monotonic() + 10
    while (state := agents.get(f"/files/{body['id']}").json())["state"] == "pending" and time.monotonic() < deadline:
        time.sleep(0.03)
    used = agents.post("/generations", json={"prompt": "x", "image_ref": [{"file_id": body["id"]}]})

    assert wrong_type.status_code == 403 and b"SignatureDoesNotMatch" in wrong_type.content
    assert state["state"] == "failed" and "does not match size_bytes (999)" in state["failure_reason"]
    assert (used.status_code, used.json()) == (422, {"detail": "image_ref[0]: file is not ready"})


def test_a_multipart_upload_is_ready_without_complete_and_lists_and_deletes(agents):
    first = agents.post("/files", files={"file": ("a.png", PNG_1x1, "image/png")}, data={"purpose": "input"}).json()
    second = agents.post("/files", files={"file": ("b.png", PNG_1x1, "image/png")}).json()
    page = agents.get("/files", params={"limit": 1}).json()
    rest = agents.get("/files", params={"limit": 1, "cursor": page["next_cursor"]}).json()
    deleted = requests.delete(f"{agents.base_url}/files/{first['id']}", headers=agents.headers, timeout=5)
    after = agents.get(f"/files/{first['id']}").json()
    used = agents.post("/generations", json={"prompt": "x", "model": "uni-1", "type": "image_edit",
                                             "source": {"file_id": first["id"]}})

    assert first["upload"] is None and first["file"]["filename"] == "a.png"
    assert first["file"]["size_bytes"] == len(PNG_1x1)
    assert [f["id"] for f in page["data"]] == [second["id"]] and page["has_more"]
    assert [f["id"] for f in rest["data"]] == [first["id"]] and not rest["has_more"]
    assert deleted.status_code == 204 and deleted.content == b""
    assert after["state"] == "deleted" and after["deleted_at"]
    assert [f["id"] for f in agents.get("/files").json()["data"]] == [second["id"]]
    assert [f["id"] for f in agents.get("/files", params={"state": "deleted"}).json()["data"]] == [first["id"]]
    assert (used.status_code, used.json()) == (422, {"detail": "source: file has been deleted"})


# -- references --------------------------------------------------------------------------------------------------

def test_loopback_reference_urls_are_fetched_at_submit_time(agents, origin):
    base, _files = origin
    def create(url, **extra):
        return agents.post("/generations", json={"prompt": "x", "image_ref": [{"url": url, **extra}]})

    ok = create(f"{base}/fox.png")
    missing = create(f"{base}/nothing.png")
    html = create(f"{base}/page")
    closed = create("http://127.0.0.1:9/fox.png")
    remote = create("https://images.example.com/fox.png")
    broken = create(f"{base}/broken.png")

    assert ok.status_code == 201 and remote.status_code == 201
    assert (missing.status_code, missing.json()["detail"]) == (422, "image_ref[0]: failed to fetch URL (HTTP 404)")
    assert (html.status_code, html.json()["detail"]) == (422, "image_ref[0]: content-type is not an image")
    assert (closed.status_code, closed.json()["detail"]) == (422, "image_ref[0]: failed to fetch URL")
    done, _seen = agents.wait(broken.json()["id"])
    assert done["failure_code"] == "corrupt_input"  # found while processing, as Luma does
    agents.config(remote_refs="fail")
    assert create("https://images.example.com/fox.png").json() == {"detail": "image_ref[0]: failed to fetch URL"}


def test_inline_and_id_references_are_checked(slow):
    image = slow.create(prompt="A fox")
    video = slow.create(prompt="A fox runs", model="ray-3.2", type="video", video={"resolution": "360p"})
    def edit(source):
        return slow.post("/generations", json={"prompt": "Night", "type": "image_edit", "source": source})

    not_done = edit({"generation_id": image["id"]})
    slow.finish(image["id"])
    slow.finish(video["id"])
    cases = {
        "bad base64": (edit({"data": "***", "media_type": "image/png"}), 422, "source: invalid base64 data"),
        "both": (edit({"url": "https://x.example/a.png", "data": "AA=="}), 400,
                 "source: provide either 'url' or 'data', not both"),
        "no media type": (edit({"data": "AA=="}), 400, "source: 'media_type' is required with 'data'"),
        "not finished": (not_done, 422, "source: generation is not completed"),
        "video as image": (edit({"generation_id": video["id"]}), 422, "source: generation output is not an image"),
        "unknown": (edit({"generation_id": "d290f1ee-6c54-4b01-90e6-d701748f0851"}), 422,
                    "source: generation not found"),
        "foreign": (slow.as_key(BOB).post("/generations", json={
            "prompt": "x", "type": "image_edit", "source": {"generation_id": image["id"]}}), 422,
            "source: generation not found"),
    }
    for name, (answer, status, detail) in cases.items():
        assert (answer.status_code, answer.json()) == (status, {"detail": detail}), name
    assert edit({"generation_id": image["id"]}).status_code == 201
    assert edit({"data": base64.b64encode(PNG_1x1).decode(), "media_type": "image/png"}).status_code == 201


# -- every type's rules ------------------------------------------------------------------------------------------

VIDEO = {"model": "ray-3.2", "type": "video"}
REF = {"url": "https://images.example.com/a.jpg"}
CLIP = {"url": "https://videos.example.com/a.mp4", "media_type": "video/mp4"}


@pytest.mark.parametrize(("body", "status", "detail"), [
    ({"prompt": "x", "model": "ray-9"}, 400, "Unknown model: ray-9"),
    ({"prompt": "x", "type": "video"}, 400, "Type 'video' is not supported for model 'uni-1'"),
    ({"prompt": "x", "model": "ray-3.2"}, 400, "Type 'image' is not supported for model 'ray-3.2'"),
    ({"prompt": "x", "model": "uni-1-max", "type": "layering", "source": REF}, 400,
     "Type 'layering' is not supported for model 'uni-1-max'"),
    ({"prompt": ""}, 400, "Prompt must be between 1 and 6000 characters"),
    ({"prompt": "x" * 6001}, 400, "Prompt must be between 1 and 6000 characters"),
    ({"prompt": "x", "aspect_ratio": "21:9"}, 400,
     "Invalid aspect_ratio '21:9'. Valid: 1:1, 1:2, 1:3, 16:9, 2:1, 2:3, 3:1, 3:2, 9:16"),
    ({"prompt": "x", **VIDEO, "aspect_ratio": "3:1"}, 400,
     "Invalid aspect_ratio '3:1'. Valid: 1:1, 16:9, 21:9, 3:4, 4:3, 9:16"),
    ({"prompt": "x", "type": "image_edit", "source": REF, "image_ref": [REF] * 9}, 400,
     "image_edit supports up to 8 reference images (source occupies one slot)"),
    ({"prompt": "x", "source": REF}, 400, "source is only valid for type 'image_edit'"),
    ({"prompt": "x", "type": "image_edit"}, 400, "source is required for type 'image_edit'"),
    ({"prompt": "x", "model": "ray-3.2", "type": "video_reframe", "source": CLIP}, 400,
     "aspect_ratio is required for type 'video_reframe'"),
    ({"prompt": "x", **VIDEO, "video": {"resolution": "4k"}}, 400,
     "Invalid video.resolution '4k'. Valid: 1080p, 360p, 540p, 720p"),
    ({"prompt": "x", **VIDEO, "video": {"duration": "10s", "loop": True}}, 422,
     "video.loop is not supported with video.duration '10s'"),
    ({"prompt": "x", **VIDEO, "video": {"hdr": True, "loop": True}}, 422, "video.loop is not supported with video.hdr"),
    ({"prompt": "x", **VIDEO, "video": {"loop": True, "end_frame": REF}}, 422,
     "video.loop is not supported with video.end_frame"),
    ({"prompt": "x", **VIDEO, "video": {"hdr": True, "resolution": "540p"}}, 422,
     "video.hdr requires video.resolution '720p' or '1080p'"),
    ({"prompt": "x", **VIDEO, "video": {"exr_export": True}}, 422, "video.exr_export requires video.hdr"),
    ({"prompt": "x", **VIDEO, "video": {"duration": "10s", "start_frame": REF}}, 422,
     "video.duration '10s' is not supported with video.start_frame or video.end_frame"),
    ({"prompt": "x", **VIDEO, "video": {"keyframes": [REF], "keyframe_indexes": [0], "start_frame": REF}}, 422,
     "video.keyframes cannot be combined with video.start_frame"),
    ({"prompt": "x", **VIDEO, "video": {"keyframes": [REF, REF], "keyframe_indexes": [0]}}, 422,
     "video.keyframes_indexes must have the same length as video.keyframes"),
    ({"prompt": "x", **VIDEO, "video": {"keyframes": [REF, REF], "keyframe_indexes": [0, 121]}}, 422,
     "video.keyframes_indexes[1] must be between 0 and 120"),
    ({"prompt": "x", "model": "ray-3.2", "type": "video_edit", "source": CLIP, "video": {"loop": True}}, 422,
     "video.loop is only valid for type 'video'"),
    ({"prompt": "x", "model": "ray-3.2", "type": "video_edit", "source": CLIP,
      "video": {"edit": {"auto_controls": True, "strength": "flex_1"}}}, 422,
     "video.edit.auto_controls cannot be combined with strength or controls"),
    ({"prompt": "x", "model": "ray-3.2", "type": "video_edit", "source": CLIP,
      "video": {"edit": {"controls": {"depth": {"enabled": True, "blur": 1.5}}}}}, 400,
     "video.edit.controls.depth.blur must be between 0 and 1"),
    ({"prompt": "x", "model": "ray-3.2", "type": "video_edit", "source": {"url": "https://v.example/a.mp4"}}, 400,
     "source: 'media_type' is required with 'url' for a video source"),
    ({"prompt": "x", "model": "ray-3.2", "type": "video_reframe", "source": CLIP, "aspect_ratio": "9:16",
      "video": {"resolution": "1080p"}}, 422,
     "video_reframe at 1080p to a vertical aspect ratio (9:16, 3:4) is coming soon; use 720p"),
    ({"prompt": "x", "model": "ray-3.2", "type": "video_reframe", "source": CLIP, "aspect_ratio": "1:1",
      "video": {"hdr": True}}, 422, "video.hdr is not supported for type 'video_reframe'"),
    ({"prompt": "x", "type": "layering", "source": REF, "layering": {"resolution": "4k"}}, 400,
     "Invalid layering.resolution '4k'. Valid: 1k, 2k"),
    ({"prompt": "x", "video": {"resolution": "720p"}}, 422,
     "video is only valid for types 'video', 'video_edit' and 'video_reframe'"),
])
def test_lumas_rules_answer_with_their_detail(agents, body, status, detail):
    answer = agents.post("/generations", json=body)
    assert (answer.status_code, answer.json()) == (status, {"detail": detail})


def test_schema_errors_are_fastapi_lists(agents):
    not_json = agents.post("/generations", data=b"{", headers={"Content-Type": "application/json"})
    no_prompt = agents.post("/generations", json={"model": "uni-1"})
    wrong_type = agents.post("/generations", json={"prompt": 5, "video": {"hdr": "yes"}})

    assert not_json.status_code == 422 and not_json.json()["detail"][0]["type"] == "json_invalid"
    assert no_prompt.json()["detail"][0]["loc"] == ["body", "prompt"]
    assert [e["loc"] for e in wrong_type.json()["detail"]] == [["body", "prompt"], ["body", "video", "hdr"]]


# -- media that match the request --------------------------------------------------------------------------------

def test_videos_have_the_asked_ratio_resolution_and_length(slow):
    vertical = slow.create(prompt="A fox runs", **VIDEO, aspect_ratio="9:16", video={"resolution": "540p"})
    long = slow.create(prompt="A long drive", **VIDEO, video={"resolution": "360p", "duration": "10s"})

    assert video_shape(download(slow.done(vertical["id"])["output"][0]["url"]))[:3] == (540, 960, 5.0)
    assert video_shape(download(slow.done(long["id"])["output"][0]["url"]))[:3] == (640, 360, 10.0)


def test_extend_edit_and_reframe_follow_their_source(slow):
    base = slow.create(prompt="A fox runs", **VIDEO, aspect_ratio="4:3", video={"resolution": "360p"})
    slow.finish(base["id"])
    extended = slow.create(prompt="It keeps running", **VIDEO,
                           video={"resolution": "360p", "start_frame": {"generation_id": base["id"]}})
    edited = slow.create(prompt="In snow", model="ray-3.2", type="video_edit", source={"generation_id": base["id"]},
                         video={"resolution": "360p", "edit": {"strength": "flex_2", "controls": {
                             "depth": {"enabled": True, "blur": 0.3}, "face": {"enabled": True},
                             "normals": {"augmentation": 0.5}, "pose": {"strength": "precise"},
                             "trajectory": {"sparsity": 0.2}}}})
    reframed = slow.create(prompt="Sky above", model="ray-3.2", type="video_reframe", aspect_ratio="9:16",
                           source={"generation_id": base["id"]}, video={"resolution": "360p", "source_position": {
                               "x_norm": 0, "y_norm": 0.3, "w_norm": 1, "h_norm": 0.4}})
    hdr_extend = slow.post("/generations", json={"prompt": "x", **VIDEO, "video": {
        "hdr": True, "end_frame": {"generation_id": base["id"]}}})

    # 360p is the pixel area of 640x360 at every ratio: 4:3 is 554x416, 9:16 is 360x640
    assert video_shape(download(slow.done(extended["id"])["output"][0]["url"]))[:3] == (554, 416, 5.0)
    assert video_shape(download(slow.done(edited["id"])["output"][0]["url"]))[:3] == (554, 416, 5.0)
    assert video_shape(download(slow.done(reframed["id"])["output"][0]["url"]))[:3] == (360, 640, 5.0)
    assert hdr_extend.json() == {"detail": "video.hdr is not supported when extending a video (extend is SDR only)"}


def test_hdr_with_exr_export_makes_a_ten_bit_pq_mp4_and_an_exr(slow):
    made = slow.create(prompt="Neon rain", **VIDEO, aspect_ratio="1:1",
                       video={"resolution": "720p", "hdr": True, "exr_export": True})
    done = slow.done(made["id"])
    video, exr = done["output"]
    data = download(video["url"])
    with av.open(io.BytesIO(data)) as container:
        stream = container.streams.video[0]
        transfer = stream.codec_context.color_trc
    image = download(exr["url"])

    assert (video["type"], exr["type"]) == ("video", "exr")
    assert video_shape(data) == (960, 960, 5.0, "yuv420p10le")
    assert transfer == 16  # AVCOL_TRC_SMPTE2084 (PQ)
    assert image[:4] == b"\x76\x2f\x31\x01" and b"chromaticities" in image[:400]


def test_layering_returns_png_layers_front_to_back_with_an_opaque_background(slow):
    made = slow.create(prompt="Split the fox from the forest", type="layering",
                       source={"url": "https://images.example.com/fox.jpg"}, layering={"resolution": "1k"})
    done = slow.done(made["id"])
    layers = [o["layer"] for o in done["output"]]
    pictures = [Image.open(io.BytesIO(download(o["url"]))) for o in done["output"]]

    assert len(layers) >= 2 and [layer["index"] for layer in layers] == list(range(len(layers)))
    assert all(layer["label"] and layer["description"] and layer["alpha_hint"] in ("soft", "hard", "none")
               for layer in layers)
    assert layers[-1]["alpha_hint"] == "none" and all(o["type"] == "image" for o in done["output"])
    assert all(p.format == "PNG" and max(p.size) == 1024 for p in pictures)
    assert pictures[0].convert("RGBA").getextrema()[3][0] == 0  # the front layer is transparent somewhere
    assert pictures[-1].convert("RGBA").getextrema()[3] == (255, 255)


def test_an_empty_layering_prompt_is_accepted_but_not_a_long_one(agents):
    assert agents.post("/generations", json={"prompt": "", "type": "layering", "source": REF}).status_code == 201
    long = agents.post("/generations", json={"prompt": "x" * 501, "type": "layering", "source": REF})
    assert long.json() == {"detail": "Prompt must be at most 500 characters for type 'layering'"}


# -- faults, introspection ---------------------------------------------------------------------------------------

def test_a_lost_create_answer_still_made_the_generation(slow):
    slow.faults(lost_creates=1)
    with pytest.raises(requests.ConnectionError):
        slow.post("/generations", json={"prompt": "A fox"})
    listed = slow.sim("GET", "/generations")["generations"]
    stats = slow.sim("GET", "/stats")
    assert [g["request"]["prompt"] for g in listed] == ["A fox"]
    assert stats["creates"]["lost"] == 1 and stats["creates"]["accepted"] == 1


def test_429_bursts_of_both_kinds_and_5xx_on_get(slow):
    made = slow.create(prompt="A fox")
    slow.faults(rpm_429=1, concurrent_429=1, get_5xx=1)
    rpm = slow.post("/generations", json={"prompt": "A fox"})
    slots = slow.post("/generations", json={"prompt": "A fox"})
    broken = slow.get(f"/generations/{made['id']}")

    assert (rpm.status_code, rpm.json(), rpm.headers["X-RateLimit-Remaining"]) == (
        429, {"detail": "Rate limit exceeded"}, "0")
    assert (slots.status_code, slots.json(), slots.headers["Retry-After"]) == (
        429, {"detail": "Too many concurrent jobs"}, "60")
    assert broken.status_code in (500, 502, 503) and broken.headers["X-API-Version"] == "2026-04-01"
    assert slow.get(f"/generations/{made['id']}").status_code == 200
    assert len(slow.sim("GET", "/generations")["generations"]) == 1


def test_cut_and_refused_downloads(slow):
    done = slow.done(slow.create(prompt="A fox")["id"])
    url = done["output"][0]["url"]
    whole = download(url)
    slow.faults(cut_downloads=1, expired_downloads=1)
    refused = requests.get(url, timeout=5)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url, timeout=5).content
    described = slow.sim("GET", f"/generations/{done['id']}")

    assert refused.status_code == 403
    assert described["outputs"][0]["sha256"] == hashlib.sha256(whole).hexdigest()
    assert requests.get(url, headers={"Range": "bytes=0-9"}, timeout=5).content == whole[:10]


def test_stats_count_requests_per_route_and_reset_forgets_everything(agents, luma_sim):
    made = agents.create(prompt="A fox")
    agents.get(f"/generations/{made['id']}")
    agents.get(f"/generations/{made['id']}")
    stats = agents.sim("GET", "/stats")
    luma_sim.reset()

    assert stats["requests"]["POST /generations"] == 1 and stats["per_generation"][made["id"]] == 2
    assert stats["statuses"]["GET /generations/{id} 200"] == 2
    assert agents.sim("GET", "/generations")["generations"] == []
    assert agents.get(f"/generations/{made['id']}").status_code == 404


# -- restart on the state file -----------------------------------------------------------------------------------

def test_a_killed_simulator_restarted_on_its_state_file_keeps_agents_generations_files_and_clock(tmp_path):
    """`manage.py up` restarts the simulator on var/simulator-state.json: a SIGKILL must not lose an Agents job."""
    flags = ["--state-file", str(tmp_path / "state.json"), "--time-scale", "0.1"]  # video: 0.6 s queued + 5 s
    sim = start_simulator(*flags, log_path=tmp_path / "sim.log")
    port = int(sim.root.rsplit(":", 1)[1])
    alice = Agents(sim.root)
    alice.config(jitter=0)
    upload = alice.post("/files", files={"file": ("fox.png", PNG_1x1, "image/png")}).json()
    deadline = time.monotonic() + 10
    while alice.get(f"/files/{upload['id']}").json()["state"] != "ready" and time.monotonic() < deadline:
        time.sleep(0.03)
    image = alice.create(prompt="Like this fox", image_ref=[{"file_id": upload["id"]}])
    finished = alice.done(image["id"])
    url_before, png_before = finished["output"][0]["url"], download(finished["output"][0]["url"])
    video_request = {"prompt": "A fox runs through snow", "model": "ray-3.2", "type": "video"}
    made_at = time.monotonic()
    video = alice.create(**video_request)
    wait_until(lambda: alice.get(f"/generations/{video['id']}").json()["state"] == "processing", timeout=5)
    time.sleep(0.4)  # the state file is written within 0.2 s of a change
    sim.process.kill()
    sim.process.wait()
    time.sleep(max(0.0, made_at + 2.5 - time.monotonic()))  # down for a while: part of its 5 s of processing pass

    again = start_simulator(*flags, port=port, log_path=tmp_path / "sim2.log")
    try:
        alice = Agents(again.root)
        back = alice.get(f"/generations/{video['id']}")
        saved = alice.sim("GET", f"/generations/{video['id']}")
        active = alice.sim("GET", "/stats")["active"]
        bob_sees = alice.as_key(BOB).get(f"/generations/{video['id']}").status_code
        assert back.status_code == 200 and back.json()["state"] == "processing" and back.json()["id"] == video["id"]
        assert saved["request"] == video_request and saved["key"] == ALICE
        assert active == {ALICE: 1} and bob_sees == 404  # its concurrency slot and its key's namespace came back

        # Issued before the kill, still valid: same secret, same bytes.
        assert requests.get(url_before, timeout=10).content == png_before
        assert alice.get(f"/generations/{image['id']}").json()["state"] == "completed"
        kept = alice.get(f"/files/{upload['id']}").json()
        assert (kept["state"], kept["filename"]) == ("ready", "fox.png")
        again_made = alice.create(prompt="Again", image_ref=[{"file_id": upload["id"]}])
        alice.finish(again_made["id"])

        done, _ = alice.wait(video["id"])
        # Its clock went on: it finished on its first schedule (5.6 s after the create), not after 5 s of
        # processing counted again from the restart (7.5 s or later).
        assert done["state"] == "completed" and time.monotonic() - made_at < 7.0
        assert video_shape(download(done["output"][0]["url"])) == (1280, 720, 5.0, "yuv420p")
        assert alice.sim("GET", "/stats")["active"] == {}  # the slot it took before the kill is free again
    finally:
        stop_simulator(again)


def test_a_state_file_from_before_the_agents_part_loads_and_gains_one(tmp_path):
    from generations.simulator.agents_config import AgentsConfig, AgentsFaults
    from generations.simulator.agents_engine import AgentsEngine
    from generations.simulator.config import Config
    from generations.simulator.engine import Engine
    from generations.simulator.faults import Faults

    path = tmp_path / "state.json"
    path.write_text(json.dumps({"version": 2, "seq": 0, "balance": 500.0, "secret": "00" * 16, "generations": []}))
    engine = Engine(Config(), Faults(), 1, "http://127.0.0.1:1", str(path))
    agents = AgentsEngine(AgentsConfig(), AgentsFaults(), 1, "http://127.0.0.1:1", state=engine.state)
    agents.files.create_multipart(ALICE, "multipart/form-data; boundary=b", b"--b\r\nContent-Disposition: form-data; "
                                  b'name="file"; filename="a.png"\r\nContent-Type: image/png\r\n\r\n' + PNG_1x1
                                  + b"\r\n--b--\r\n")
    engine.save_state()
    saved = json.loads(path.read_text())

    assert agents.gens == {} and engine.balance == 500.0
    assert saved["balance"] == 500.0 and [f["filename"] for f in saved["agents"]["files"]["files"]] == ["a.png"]


def test_a_pending_uploads_bytes_wait_out_a_restart_in_a_file_of_their_own_not_in_the_state_file(tmp_path):
    from generations.simulator.agents_config import AgentsConfig, AgentsFaults
    from generations.simulator.agents_engine import AgentsEngine
    from generations.simulator.config import Config
    from generations.simulator.engine import Engine
    from generations.simulator.faults import Faults

    def simulator():
        engine = Engine(Config(), Faults(), 1, "http://127.0.0.1:1", str(tmp_path / "state.json"))
        return engine, AgentsEngine(AgentsConfig(file_ingest_seconds=0), AgentsFaults(), 1, "http://127.0.0.1:1",
                                    state=engine.state)

    picture = io.BytesIO()
    Image.effect_noise((400, 300), 60).convert("RGB").save(picture, "PNG")  # noise: a PNG that does not shrink
    data = picture.getvalue()
    engine, agents = simulator()
    made = agents.files.create_json(ALICE, {"mime_type": "image/png", "size_bytes": len(data), "filename": "n.png"})
    agents.files.put(made["id"], data)  # PUT, not yet completed: pending
    engine.save_state()
    beside = tmp_path / "state.json.uploads" / made["id"]
    written_at = beside.stat().st_mtime_ns
    engine.save_state()  # written once, not again with every save

    state_size = (tmp_path / "state.json").stat().st_size
    assert beside.read_bytes() == data and beside.stat().st_mtime_ns == written_at
    assert state_size < len(data) / 10  # the state file names the bytes, it does not hold them

    # Restarted: the bytes are back, complete ingests them, and the file beside the state file goes.
    engine, agents = simulator()
    assert agents.files.complete(ALICE, made["id"])["state"] == "pending"
    wait_until(lambda: agents.files.get(ALICE, made["id"])["state"] == "ready", timeout=5)
    engine.save_state()
    assert agents.files.files[made["id"]].width == 400 and not beside.exists()
