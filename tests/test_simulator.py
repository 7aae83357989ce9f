"""The Luma simulator over raw HTTP: Luma's contract (luma-api.md), its limits, assets, callbacks and every fault."""

import hashlib
import io
import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from functools import partial
from pathlib import Path

import av
import pytest
import requests
from PIL import Image

from tests.plugins import stack
from tests.plugins.simulator import start_simulator, stop_simulator
from tests.test_simulator_media import file_server  # noqa: F401 (a fixture: serves /upload.mp4 on 127.0.0.1)

pytestmark = [pytest.mark.timeout(60), pytest.mark.no_db]

PROMPT = "A teddy bear in sunglasses playing electric guitar and dancing"
ISO = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$")


# The simulator answers in milliseconds: look often, give up soon.
wait_until = partial(stack.wait_until, timeout=5.0, interval=0.02)


def post(sim, path, body=None, key=None, **kwargs):
    headers = {"Authorization": f"Bearer {key or sim.api_key}"}
    return requests.post(f"{sim.base_url}{path}", json=body, headers=headers, timeout=10, **kwargs)


def get(sim, path, key=None, **kwargs):
    return requests.get(f"{sim.base_url}{path}", headers={"Authorization": f"Bearer {key or sim.api_key}"},
                        timeout=10, **kwargs)


def video(sim, **body):
    body = {"model": "ray-2", "prompt": PROMPT, **body}
    answer = post(sim, "/generations/video", body)
    assert answer.status_code == 201, answer.text
    return answer.json()


def completed_video(sim, **body):
    made = video(sim, **body)
    return sim.finish(made["id"], "completed")


def asset_url(generation):
    return generation["assets"]["video"] or generation["assets"]["image"]


def rss_peak_kb(pid):
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+)", status).group(1))


class Receiver:
    """A tiny local web server: records callbacks, answers a scripted list of statuses, serves keyframe files."""

    def __init__(self):
        self.calls, self.script, self.lock = [], [], threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.calls.append({"path": self.path, "type": self.headers.get("Content-Type"),
                                           "body": json.loads(body), "at": time.monotonic()})
                    status = receiver.script.pop(0) if receiver.script else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def do_GET(self):
                files = {"/frame.jpg": ("image/jpeg", receiver.jpeg()), "/notes.txt": ("text/plain", b"not an image")}
                if self.path not in files:
                    self.send_error(404)
                    return
                kind, data = files[self.path]
                self.send_response(200)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()

    @staticmethod
    def jpeg():
        out = io.BytesIO()
        Image.new("RGB", (64, 36), (200, 40, 40)).save(out, format="JPEG")
        return out.getvalue()

    def states(self, generation_id=None):
        with self.lock:
            return [c["body"]["state"] for c in self.calls if generation_id in (None, c["body"]["id"])]


@pytest.fixture
def receiver():
    rec = Receiver()
    yield rec
    rec.server.shutdown()
    rec.server.server_close()


@pytest.fixture
def slow_clock(luma_sim):
    """Generations stay queued for a minute unless a test finishes them."""
    luma_sim.config(queued_seconds=60)
    return luma_sim


# -- the basics ---------------------------------------------------------------------------------------------------


def test_ping_answers_with_a_message(luma_sim):
    answer = get(luma_sim, "/ping")
    assert answer.status_code == 200
    assert answer.json() == {"message": "pong"}


@pytest.mark.parametrize("method,path", [
    ("GET", "/ping"), ("GET", "/credits"), ("GET", "/generations"), ("GET", "/generations/concepts/list"),
    ("GET", f"/generations/{uuid.uuid4()}"), ("DELETE", f"/generations/{uuid.uuid4()}"),
    ("POST", "/generations/video"), ("POST", "/generations/image"), ("POST", "/generations"),
])
@pytest.mark.parametrize("authorization", [None, "Bearer ", "Basic abc", "bearer"])
def test_every_endpoint_refuses_a_missing_or_malformed_key(luma_sim, method, path, authorization):
    headers = {"Authorization": authorization} if authorization else {}
    answer = requests.request(method, f"{luma_sim.base_url}{path}", headers=headers, json={}, timeout=5)
    assert answer.status_code == 401
    assert answer.json() == {"detail": "Invalid API key"}


def test_restricted_keys_let_only_those_keys_in(luma_sim):
    luma_sim.config(api_keys=["luma-team-key"])
    assert get(luma_sim, "/ping", key="luma-other-key").status_code == 401
    assert get(luma_sim, "/ping", key="luma-team-key").status_code == 200
    assert "luma-team-key" not in json.dumps(luma_sim.config())  # the key is never shown


def test_a_create_answers_201_with_a_generation_shaped_like_lumas(slow_clock):
    answer = post(slow_clock, "/generations/video", {"model": "ray-2", "prompt": PROMPT, "aspect_ratio": "9:16"})
    assert answer.status_code == 201
    body = answer.json()
    assert uuid.UUID(body["id"]).version == 4
    assert ISO.match(body["created_at"])
    assert {k: body[k] for k in ("generation_type", "state", "failure_reason", "assets", "model")} == {
        "generation_type": "video", "state": "queued", "failure_reason": None, "assets": None, "model": "ray-2"}
    assert body["request"] == {
        "generation_type": "video", "model": "ray-2", "prompt": PROMPT, "aspect_ratio": "9:16", "loop": None,
        "keyframes": None, "duration": None, "resolution": None, "concepts": None, "callback_url": None}
    assert get(slow_clock, f"/generations/{body['id']}").json() == body


def test_the_legacy_create_path_makes_a_video_too(slow_clock):
    answer = post(slow_clock, "/generations", {"model": "ray-2", "prompt": PROMPT})
    assert answer.status_code == 201
    assert answer.json()["generation_type"] == "video"
    assert slow_clock.stats()["requests"] == {"POST /generations": 1}


def test_a_generation_goes_from_queued_through_dreaming_to_completed(luma_sim):
    luma_sim.config(time_scale=0.02)
    made = video(luma_sim)
    dreaming = luma_sim.wait_for_state(made["id"], "dreaming", timeout=3)
    assert dreaming["assets"]["progress_video"].endswith("/progress.mp4")
    done = luma_sim.wait_for_state(made["id"], "completed", timeout=3)
    assert done["assets"] == {"video": f"{luma_sim.root}/assets/{made['id']}/video.mp4", "image": None,
                              "progress_video": None}
    assert get(luma_sim, f"/generations/{made['id']}").json()["state"] == "completed"


def test_unknown_ids_are_404_and_delete_removes_a_generation(slow_clock):
    missing = uuid.uuid4()
    assert get(slow_clock, f"/generations/{missing}").status_code == 404
    headers = {"Authorization": f"Bearer {slow_clock.api_key}"}
    assert requests.delete(f"{slow_clock.base_url}/generations/{missing}", headers=headers).status_code == 404
    made = video(slow_clock)

    answer = requests.delete(f"{slow_clock.base_url}/generations/{made['id']}", headers=headers)

    assert (answer.status_code, answer.content) == (204, b"")
    assert get(slow_clock, f"/generations/{made['id']}").json() == {"detail": "Generation not found"}
    assert get(slow_clock, "/generations").json()["generations"] == []


def test_the_list_is_newest_first_and_pages_with_limit_and_offset(slow_clock):
    slow_clock.config(limits=False)
    ids = [video(slow_clock, prompt=f"clip number {i}")["id"] for i in range(12)]

    first = get(slow_clock, "/generations").json()
    second = get(slow_clock, "/generations", params={"limit": 10, "offset": 10}).json()
    everything = get(slow_clock, "/generations", params={"limit": 500}).json()

    assert [g["id"] for g in first["generations"]] == ids[::-1][:10]
    assert {k: first[k] for k in ("count", "has_more", "limit", "offset")} == {
        "count": 10, "has_more": True, "limit": 10, "offset": 0}
    assert [g["id"] for g in second["generations"]] == ids[1::-1]
    assert (second["count"], second["has_more"]) == (2, False)
    assert (everything["limit"], everything["count"]) == (100, 12)
    assert get(slow_clock, "/generations", params={"limit": "ten"}).status_code == 422
    assert get(slow_clock, "/generations", params={"offset": -1}).status_code == 422


def test_concepts_and_camera_motions_are_lists_of_phrases(luma_sim):
    concepts = get(luma_sim, "/generations/concepts/list").json()
    motions = get(luma_sim, "/generations/camera_motion/list").json()
    assert "dolly_zoom" in concepts and "handheld" in concepts
    assert "camera orbit left" in motions and len(motions) >= 15
    assert all(isinstance(m, str) for m in concepts + motions)


def test_unknown_paths_and_methods_answer_like_fastapi(luma_sim):
    assert get(luma_sim, "/nothing-here").status_code == 404
    assert requests.put(f"{luma_sim.base_url}/credits", timeout=5).status_code == 405


# -- validation ----------------------------------------------------------------------------------------------------

IMAGE0 = {"type": "image", "url": "https://images.example.com/start.jpg"}
IMAGE1 = {"type": "image", "url": "https://images.example.com/end.jpg"}
GEN = {"type": "generation", "id": "d1968551-6113-4b46-b567-09210c2e79b0"}


@pytest.mark.parametrize("body,message", [
    ({}, "Prompt is required"),
    ({"prompt": "   "}, "Prompt is required"),
    ({"keyframes": {"frame0": GEN}}, "Prompt is required"),
    ({"prompt": "hi"}, "Prompt is too short, minimum length is 3 characters"),
    ({"prompt": "x" * 5001}, "Prompt is too long, maximum length is 5000 characters"),
    ({"prompt": PROMPT, "loop": True, "keyframes": {"frame1": IMAGE1}}, "Loop is not supported for end frame"),
    ({"prompt": PROMPT, "loop": True, "keyframes": {"frame0": IMAGE0, "frame1": IMAGE1}},
     "Loop is not supported for keyframes"),
    ({"prompt": PROMPT, "loop": True, "keyframes": {"frame1": GEN}}, "Loop is not supported for extend reverse"),
    ({"prompt": PROMPT, "loop": True, "keyframes": {"frame0": GEN, "frame1": IMAGE1}},
     "Loop is not supported for interpolate video to image"),
    ({"prompt": PROMPT, "loop": True, "keyframes": {"frame0": IMAGE0, "frame1": GEN}},
     "Loop is not supported for interpolate image to video"),
    ({"prompt": PROMPT, "loop": True, "keyframes": {"frame0": GEN, "frame1": GEN}},
     "Loop is not supported for interpolate between two videos"),
    ({"prompt": PROMPT, "keyframes": {"frame0": None, "frame1": None}}, "No keyframes provided"),
    ({"prompt": PROMPT, "keyframes": {}}, "No keyframes provided"),
    ({"prompt": PROMPT, "generation_type": "image"}, "Unknown request type"),
    ({"prompt": PROMPT, "model": "ray-flash-2", "concepts": [{"key": "dolly_zoom"}]},
     "concepts are not supported for this model"),
    ({"prompt": PROMPT, "concepts": [{"key": "moonwalk"}]}, "Unknown concept: moonwalk"),
    ({"prompt": PROMPT, "keyframes": {"frame0": GEN}}, f"Generation {GEN['id']} not found"),
])
def test_lumas_rules_answer_400_with_lumas_words(luma_sim, body, message):
    answer = post(luma_sim, "/generations/video", {"model": "ray-2", **body})
    assert answer.status_code == 400
    assert answer.json() == {"detail": message}


@pytest.mark.parametrize("body", [
    {"prompt": PROMPT, "loop": True, "keyframes": {"frame0": IMAGE0}},
    {"keyframes": {"frame0": IMAGE0}},
    {"keyframes": {"frame1": IMAGE1}},
    {"prompt": PROMPT, "keyframes": {"frame0": IMAGE0, "frame1": IMAGE1}},
    {"prompt": PROMPT, "concepts": [{"key": "dolly_zoom"}], "duration": "9s", "resolution": "1080p"},
])
def test_allowed_combinations_are_accepted(slow_clock, body):
    assert post(slow_clock, "/generations/video", {"model": "ray-2", **body}).status_code == 201


@pytest.mark.parametrize("body,loc,kind", [
    ({"prompt": PROMPT}, ["body", "model"], "missing"),
    ({"prompt": PROMPT, "model": "ray-1-6"}, ["body", "model"], "literal_error"),
    ({"prompt": PROMPT, "model": "ray-2", "aspect_ratio": "2:1"}, ["body", "aspect_ratio"], "literal_error"),
    ({"prompt": PROMPT, "model": "ray-2", "resolution": "8k"}, ["body", "resolution"], "literal_error"),
    ({"prompt": PROMPT, "model": "ray-2", "duration": "7s"}, ["body", "duration"], "literal_error"),
    ({"prompt": PROMPT, "model": "ray-2", "loop": "yes"}, ["body", "loop"], "bool_type"),
    ({"prompt": 42, "model": "ray-2"}, ["body", "prompt"], "string_type"),
    ({"prompt": PROMPT, "model": "ray-2", "keyframes": {"frame0": {"url": "x"}}},
     ["body", "keyframes", "frame0"], "union_tag_not_found"),
    ({"prompt": PROMPT, "model": "ray-2", "keyframes": {"frame0": {"type": "video", "url": "x"}}},
     ["body", "keyframes", "frame0"], "union_tag_invalid"),
    ({"prompt": PROMPT, "model": "ray-2", "keyframes": {"frame0": {"type": "image"}}},
     ["body", "keyframes", "frame0", "image", "url"], "missing"),
    ({"prompt": PROMPT, "model": "ray-2", "concepts": ["dolly_zoom"]}, ["body", "concepts", 0], "model_attributes_type"),
    ([PROMPT], ["body"], "model_attributes_type"),
])
def test_schema_violations_answer_422_like_fastapi(luma_sim, body, loc, kind):
    answer = post(luma_sim, "/generations/video", body)
    assert answer.status_code == 422
    errors = answer.json()["detail"]
    assert [(e["loc"], e["type"]) for e in errors] == [(loc, kind)]
    assert errors[0]["msg"]


def test_a_body_that_is_not_json_is_422(luma_sim):
    headers = {"Authorization": f"Bearer {luma_sim.api_key}", "Content-Type": "application/json"}
    answer = requests.post(f"{luma_sim.base_url}/generations/video", data=b"{nope", headers=headers, timeout=5)
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["type"] == "json_invalid"
    empty = requests.post(f"{luma_sim.base_url}/generations/video", headers=headers, timeout=5)
    assert empty.json()["detail"][0]["loc"] == ["body"]


def test_other_create_endpoints_check_their_required_fields(slow_clock):
    media = {"url": "https://videos.example.com/source.mp4"}
    good = {
        "/generations/image": {"model": "photon-1", "prompt": PROMPT, "format": "png", "image_ref": [
            {"url": "https://images.example.com/ref.jpg", "weight": 0.85}]},
        "/generations/video/modify": {"generation_type": "modify_video", "media": media, "mode": "flex_1",
                                      "model": "ray-2", "prompt": "make it snow"},
        "/generations/video/reframe": {"generation_type": "reframe_video", "media": media, "model": "ray-flash-2",
                                       "aspect_ratio": "9:16", "grid_position_x": 10},
        "/generations/image/reframe": {"generation_type": "reframe_image", "media": {"url": "https://x.test/a.jpg"},
                                       "model": "photon-flash-1", "aspect_ratio": "1:1"},
    }
    for path, body in good.items():
        answer = post(slow_clock, path, body)
        assert answer.status_code == 201, (path, answer.text)
        assert answer.json()["generation_type"] == ("image" if "image" in path else "video")
        missing = post(slow_clock, path, {k: v for k, v in body.items() if k != "model"})
        assert missing.status_code == 422
        assert ["body", "model"] in [e["loc"] for e in missing.json()["detail"]]
    too_heavy = post(slow_clock, "/generations/image", {"model": "photon-1", "prompt": PROMPT,
                                                        "image_ref": [{"url": "https://x.test/a.jpg", "weight": 1.5}]})
    assert too_heavy.json()["detail"][0]["type"] == "less_than_equal"
    five = [{"url": f"https://x.test/{i}.jpg"} for i in range(5)]
    assert post(slow_clock, "/generations/image", {"model": "photon-1", "prompt": PROMPT, "image_ref": five}).json() == {
        "detail": "image_ref supports at most 4 images"}


# -- lineage: extend, interpolate, upscale, audio ------------------------------------------------------------------


def test_keyframe_generations_must_exist_be_videos_and_be_completed(slow_clock):
    queued = video(slow_clock)
    picture = post(slow_clock, "/generations/image", {"model": "photon-1", "prompt": PROMPT}).json()
    slow_clock.finish(picture["id"])
    done = completed_video(slow_clock, aspect_ratio="21:9")
    ref = {"type": "generation"}

    not_done = post(slow_clock, "/generations/video", {"model": "ray-2", "prompt": PROMPT,
                                                       "keyframes": {"frame0": {**ref, "id": queued["id"]}}})
    not_video = post(slow_clock, "/generations/video", {"model": "ray-2", "prompt": PROMPT,
                                                        "keyframes": {"frame1": {**ref, "id": picture["id"]}}})
    extend = post(slow_clock, "/generations/video", {"model": "ray-2", "prompt": PROMPT,
                                                     "keyframes": {"frame0": {**ref, "id": done["id"]}}})
    other = completed_video(slow_clock)
    between = post(slow_clock, "/generations/video", {"model": "ray-2", "prompt": PROMPT, "keyframes": {
        "frame0": {**ref, "id": done["id"]}, "frame1": {**ref, "id": other["id"]}}})

    assert not_done.json() == {"detail": f"Generation {queued['id']} is not completed"}
    assert not_video.json() == {"detail": f"Generation {picture['id']} is not a video"}
    assert extend.status_code == 201
    assert extend.json()["request"]["keyframes"] == {"frame0": {"type": "generation", "id": done["id"]}, "frame1": None}
    assert between.status_code == 201
    assert slow_clock.finish(extend.json()["id"])["assets"]["video"]


@pytest.mark.parametrize("action,body", [("upscale", {"resolution": "1080p"}), ("audio", {"prompt": "guitar riff"})])
def test_upscale_and_audio_make_a_new_generation_from_a_completed_video(slow_clock, action, body):
    source = completed_video(slow_clock)
    queued = video(slow_clock)

    made = post(slow_clock, f"/generations/{source['id']}/{action}", body)

    assert made.status_code == 201
    assert made.json()["id"] != source["id"]
    assert made.json()["request"]["generation_type"] == {"upscale": "upscale_video", "audio": "add_audio"}[action]
    assert post(slow_clock, f"/generations/{uuid.uuid4()}/{action}", body).status_code == 404
    assert post(slow_clock, f"/generations/{queued['id']}/{action}", body).json() == {
        "detail": f"Generation {queued['id']} is not completed"}
    counted = slow_clock.stats()
    assert counted["requests"][f"POST /generations/{{id}}/{action}"] == 3
    assert counted["per_generation"][source["id"]] == 1


def test_a_synchronous_image_create_answers_with_the_finished_image(luma_sim):
    luma_sim.config(time_scale=0.01)
    answer = post(luma_sim, "/generations/image", {"model": "photon-1", "prompt": PROMPT, "sync": True})
    assert answer.status_code == 201
    assert answer.json()["state"] == "completed"
    picture = requests.get(answer.json()["assets"]["image"], timeout=5)
    assert picture.headers["Content-Type"] == "image/jpeg"
    assert Image.open(io.BytesIO(picture.content)).size == (2048, 1152)  # Photon's 16:9 size


# -- failures and credits ------------------------------------------------------------------------------------------


def test_a_blacklisted_prompt_fails_with_lumas_reason(luma_sim):
    made = video(luma_sim, prompt="A blacklisted tiger in the snow")
    failed = luma_sim.wait_for_state(made["id"], "failed", timeout=5)
    assert failed["failure_reason"] == "Contains blacklisted words"


def test_keyframes_are_fetched_only_from_loopback_and_must_be_pictures(luma_sim, receiver):
    good = video(luma_sim, keyframes={"frame0": {"type": "image", "url": f"{receiver.url}/frame.jpg"}})
    missing = video(luma_sim, keyframes={"frame0": {"type": "image", "url": f"{receiver.url}/gone.jpg"}})
    text = video(luma_sim, keyframes={"frame1": {"type": "image", "url": f"{receiver.url}/notes.txt"}})
    remote = video(luma_sim, keyframes={"frame0": IMAGE0})

    assert luma_sim.wait_for_state(good["id"], "completed")["failure_reason"] is None
    assert luma_sim.wait_for_state(remote["id"], "completed")["failure_reason"] is None
    for made in (missing, text):
        assert luma_sim.wait_for_state(made["id"], "failed")["failure_reason"] == "Failed to read user input frames"


def test_remote_keyframes_can_be_made_to_fail(luma_sim):
    luma_sim.config(remote_keyframes="fail")
    made = video(luma_sim, keyframes={"frame0": IMAGE0})
    assert luma_sim.wait_for_state(made["id"], "failed")["failure_reason"] == "Failed to read user input frames"


def test_a_failure_rate_of_one_fails_every_job(luma_sim):
    luma_sim.config(failure_rate=1.0, time_scale=0.01)
    made = video(luma_sim)
    assert luma_sim.wait_for_state(made["id"], "failed")["failure_reason"] == "Job failed"


def test_credits_are_charged_at_create_and_refunded_on_failure(slow_clock):
    start = get(slow_clock, "/credits").json()["credit_balance"]
    first = video(slow_clock)  # ray-2, 720p, 5 s: $1.75 (luma-api.md section 7)
    second = video(slow_clock, resolution="1080p", duration="9s")
    assert get(slow_clock, "/credits").json()["credit_balance"] == start - 175.0 - 709.0

    slow_clock.finish(first["id"], "completed")
    slow_clock.finish(second["id"], "failed", "Frame moderation failed")

    assert get(slow_clock, "/credits").json() == {"credit_balance": start - 175.0}
    assert get(slow_clock, f"/generations/{second['id']}").json()["failure_reason"] == "Frame moderation failed"


def test_modify_reframe_and_upscale_are_charged_for_their_sources_resolution_and_length(slow_clock):
    source = completed_video(slow_clock, resolution="1080p", duration="9s", aspect_ratio="9:16")
    start = get(slow_clock, "/credits").json()["credit_balance"]
    media = {"url": asset_url(source)}
    post(slow_clock, "/generations/video/modify", {"generation_type": "modify_video", "media": media,
                                                   "mode": "flex_1", "model": "ray-2", "prompt": "snow"})
    assert get(slow_clock, "/credits").json()["credit_balance"] == start - 709.0  # ray-2 1080p 9 s, like its source
    post(slow_clock, "/generations/video/reframe", {"generation_type": "reframe_video", "media": media,
                                                    "model": "ray-flash-2", "aspect_ratio": "1:1"})
    assert get(slow_clock, "/credits").json()["credit_balance"] == start - 709.0 - 244.0
    post(slow_clock, f"/generations/{source['id']}/upscale", {"resolution": "4k"})
    assert get(slow_clock, "/credits").json()["credit_balance"] == start - 709.0 - 244.0 - 2834.0  # 4K for 9 s


def test_an_uploaded_source_is_charged_for_its_measured_size_and_length(slow_clock, file_server):
    start = get(slow_clock, "/credits").json()["credit_balance"]
    post(slow_clock, "/generations/video/modify", {"generation_type": "modify_video", "model": "ray-flash-2",
                                                   "mode": "adhere_1", "media": {"url": f"{file_server}/upload.mp4"}})
    deadline = time.monotonic() + 10
    while get(slow_clock, "/credits").json()["credit_balance"] == start - 60.0 and time.monotonic() < deadline:
        time.sleep(0.05)  # charged as 720p 5 s until the file is read
    assert get(slow_clock, "/credits").json()["credit_balance"] == start - 20.0  # 640x480 (540p), 3 s, Ray Flash 2


def test_the_simulator_charges_what_lumaweb_estimates_for_every_model_resolution_and_length():
    """The simulator keeps its own price list (it must not import the app): it has to be the app's, or every
    local run shows a gap between Luma's balance and lumaweb's estimate on the "me" page."""
    from generations import pricing
    from generations.models import Kind
    from generations.simulator import config

    app_kinds = {"video": Kind.TEXT_TO_VIDEO, "upscale_video": Kind.UPSCALE, "modify_video": Kind.MODIFY_VIDEO,
                 "reframe_video": Kind.REFRAME_VIDEO}
    checked = 0
    for kind, app_kind in app_kinds.items():
        for model in pricing.USD_PER_MEGAPIXEL:
            for resolution in pricing.PIXELS:
                for duration, seconds in [*pricing.SECONDS.items(), ("7.04s", 7.04), ("10s", 10.0)]:
                    expected = pricing.estimate_cents(app_kind, model, resolution, duration)
                    assert config.cost_of(kind, model, resolution, seconds) == expected, (kind, model, resolution,
                                                                                          duration)
                    checked += 1
    for kind, app_kind in {"image": Kind.IMAGE, "reframe_image": Kind.REFRAME_IMAGE}.items():
        for model in pricing.IMAGE_CENTS:
            assert config.cost_of(kind, model) == pricing.estimate_cents(app_kind, model)
    assert config.cost_of("add_audio", "ray-2", "1080p", 9.0) == pricing.estimate_cents(Kind.ADD_AUDIO, "ray-2",
                                                                                         "1080p", "9s")
    assert checked == 4 * 2 * 4 * 4
    assert (config.USD_PER_MEGAPIXEL, config.RESOLUTION_PIXELS, config.FRAMES_PER_SECOND) == (
        pricing.USD_PER_MEGAPIXEL, pricing.PIXELS, pricing.FRAMES_PER_SECOND)
    assert all(config.resolution_of(w, h) == pricing.resolution_of(w, h)
               for w, h in [(1080, 1920), (2048, 1152), (640, 360), (3840, 2160), (1536, 1536), (100, 100)])


def test_a_create_beyond_the_balance_is_402_and_costs_nothing(slow_clock):
    slow_clock.config(credits=200.0)
    video(slow_clock)
    answer = post(slow_clock, "/generations/video", {"model": "ray-2", "prompt": PROMPT})
    assert (answer.status_code, answer.json()) == (402, {"detail": "Insufficient credits"})
    assert get(slow_clock, "/credits").json()["credit_balance"] == 25.0
    assert len(slow_clock.generations()) == 1


# -- limits ---------------------------------------------------------------------------------------------------------


def test_the_concurrency_limit_answers_429_with_retry_after(slow_clock):
    slow_clock.config(concurrent_limit=2)
    first, _second = video(slow_clock), video(slow_clock)

    refused = post(slow_clock, "/generations/video", {"model": "ray-2", "prompt": PROMPT})
    image = post(slow_clock, "/generations/image", {"model": "photon-1", "prompt": PROMPT})
    slow_clock.finish(first["id"])
    after = post(slow_clock, "/generations/video", {"model": "ray-2", "prompt": PROMPT})

    assert refused.status_code == 429
    assert "at most 2 ray generations" in refused.json()["detail"]
    assert int(refused.headers["Retry-After"]) >= 1
    assert image.status_code == 201  # Photon has its own limits
    assert after.status_code == 201


def test_the_creates_per_minute_limit_answers_429_until_the_minute_is_over(slow_clock):
    slow_clock.config(creates_per_minute=3, image_creates_per_minute=1)
    answers = [post(slow_clock, "/generations/video", {"model": "ray-2", "prompt": PROMPT}) for _ in range(4)]
    images = [post(slow_clock, "/generations/image", {"model": "photon-1", "prompt": PROMPT}) for _ in range(2)]

    assert [a.status_code for a in answers] == [201, 201, 201, 429]
    assert 55 <= int(answers[-1].headers["Retry-After"]) <= 60
    assert "at most 3 create requests per minute" in answers[-1].json()["detail"]
    assert [a.status_code for a in images] == [201, 429]
    assert slow_clock.creates()["count"] == 4


def test_limits_can_be_switched_off(slow_clock):
    slow_clock.config(limits=False, concurrent_limit=1, creates_per_minute=1)
    assert [post(slow_clock, "/generations/video", {"model": "ray-2", "prompt": PROMPT}).status_code
            for _ in range(3)] == [201, 201, 201]


# -- assets ---------------------------------------------------------------------------------------------------------


def test_a_completed_video_is_a_playable_h264_mp4(luma_sim, tmp_path):
    done = completed_video(luma_sim, aspect_ratio="9:16")
    answer = requests.get(done["assets"]["video"], timeout=10)
    path = tmp_path / "clip.mp4"
    path.write_bytes(answer.content)

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        frames = sum(1 for _ in container.decode(stream))
        assert (stream.codec_context.name, stream.width, stream.height) == ("h264", 720, 1280)  # 720p, portrait
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert container.duration == 5_000_000  # microseconds
    assert frames >= 10
    assert answer.headers["Content-Type"] == "video/mp4"
    assert answer.content[4:8] == b"ftyp" and answer.content[32:40].endswith(b"moov")  # +faststart


def test_range_requests_return_the_matching_slice(luma_sim):
    url = asset_url(completed_video(luma_sim))
    whole = requests.get(url, timeout=10).content
    size = len(whole)

    middle = requests.get(url, headers={"Range": "bytes=100-1099"}, timeout=10)
    tail = requests.get(url, headers={"Range": "bytes=-500"}, timeout=10)
    rest = requests.get(url, headers={"Range": f"bytes={size - 10}-"}, timeout=10)
    beyond = requests.get(url, headers={"Range": f"bytes={size}-"}, timeout=10)
    head = requests.head(url, timeout=10)

    assert (middle.status_code, middle.content) == (206, whole[100:1100])
    assert middle.headers["Content-Range"] == f"bytes 100-1099/{size}"
    assert tail.content == whole[-500:] and rest.content == whole[-10:]
    assert (beyond.status_code, beyond.headers["Content-Range"]) == (416, f"bytes */{size}")
    assert (head.status_code, head.content) == (200, b"")
    assert head.headers["Content-Length"] == str(size) and head.headers["Accept-Ranges"] == "bytes"


def test_every_generation_has_its_own_bytes_and_the_simulator_knows_their_sha256(luma_sim):
    made = [completed_video(luma_sim) for _ in range(3)]
    picture = post(luma_sim, "/generations/image", {"model": "photon-1", "prompt": PROMPT, "format": "png"}).json()
    made.append(luma_sim.finish(picture["id"]))

    downloaded = {g["id"]: hashlib.sha256(requests.get(asset_url(g), timeout=10).content).hexdigest() for g in made}

    assert len(set(downloaded.values())) == 4
    known = {g["id"]: g["sha256"] for g in luma_sim.generations()}
    assert known == downloaded
    assert requests.get(asset_url(made[-1]), timeout=5).content[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_large_asset_streams_with_flat_memory(luma_sim):
    size = 50 * 1024 * 1024
    luma_sim.config(asset_bytes=size)
    done = completed_video(luma_sim)
    requests.get(asset_url(completed_video(luma_sim)), headers={"Range": "bytes=0-99"}, timeout=10)
    peak_before = rss_peak_kb(luma_sim.pid)

    digest, received = hashlib.sha256(), 0
    with requests.get(asset_url(done), stream=True, timeout=30) as answer:
        assert int(answer.headers["Content-Length"]) == size
        for piece in answer.iter_content(1024 * 1024):
            digest.update(piece)
            received += len(piece)

    assert received == size
    assert rss_peak_kb(luma_sim.pid) - peak_before < 20 * 1024
    assert digest.hexdigest() == next(g["sha256"] for g in luma_sim.generations() if g["id"] == done["id"])
    with av.open(io.BytesIO(requests.get(asset_url(done), headers={"Range": f"bytes=0-{200_000}"}).content)) as c:
        assert c.streams.video[0].codec_context.name == "h264"  # padding sits after the clip


@pytest.mark.e2e
def test_a_video_plays_in_chromium(luma_sim, page):
    """Debian's Chromium (pytest-playwright's page, launched as tests/conftest.py says) plays a simulator MP4."""
    luma_sim.config(asset_bytes=3_000_000)  # the padding must not disturb playback
    url = asset_url(completed_video(luma_sim, aspect_ratio="9:16"))

    page.goto(f"{luma_sim.root}/_sim")
    played = page.evaluate("""async (url) => {
        const video = document.createElement('video');
        video.muted = true; video.src = url; document.body.appendChild(video);
        await video.play();
        await new Promise((done) => setTimeout(done, 500));
        return {time: video.currentTime, width: video.videoWidth, height: video.videoHeight, error: video.error,
                duration: video.duration};
    }""", url)

    assert played["error"] is None
    assert (played["width"], played["height"], played["duration"]) == (720, 1280, 5)
    assert played["time"] > 0.2


def test_assets_of_unknown_or_unfinished_generations_are_404(slow_clock):
    queued = video(slow_clock)
    assert requests.get(f"{slow_clock.root}/assets/{queued['id']}/video.mp4", timeout=5).status_code == 404
    assert requests.get(f"{slow_clock.root}/assets/{uuid.uuid4()}/video.mp4", timeout=5).status_code == 404


# -- callbacks ------------------------------------------------------------------------------------------------------


def test_callbacks_post_the_generation_when_dreaming_and_completed(luma_sim, receiver):
    luma_sim.config(time_scale=0.02)
    made = video(luma_sim, callback_url=f"{receiver.url}/hook?token=abc")

    luma_sim.wait_for_state(made["id"], "completed")
    wait_until(lambda: len(receiver.calls) == 2)

    assert receiver.states() == ["dreaming", "completed"]
    assert {c["type"] for c in receiver.calls} == {"application/json"}
    assert receiver.calls[0]["path"] == "/hook?token=abc"
    assert receiver.calls[1]["body"] == get(luma_sim, f"/generations/{made['id']}").json()


def test_a_failed_generation_is_called_back_with_its_reason(slow_clock, receiver):
    made = video(slow_clock, callback_url=f"{receiver.url}/hook")
    slow_clock.finish(made["id"], "failed", "Job failed")
    wait_until(lambda: receiver.calls)
    assert receiver.calls[0]["body"]["state"] == "failed"
    assert receiver.calls[0]["body"]["failure_reason"] == "Job failed"


def test_a_refused_callback_is_retried_until_it_gets_200(slow_clock, receiver):
    receiver.script = [500, 500]
    made = video(slow_clock, callback_url=f"{receiver.url}/hook")
    slow_clock.finish(made["id"])

    wait_until(lambda: len(receiver.calls) == 3)
    time.sleep(0.3)

    assert len(receiver.calls) == 3
    assert slow_clock.callbacks(made["id"])[0]["attempts"] == [500, 500, 200]
    gaps = [b["at"] - a["at"] for a, b in zip(receiver.calls, receiver.calls[1:])]
    assert all(gap >= 0.09 for gap in gaps)


def test_a_callback_that_never_succeeds_is_given_up_after_three_retries(slow_clock, receiver):
    receiver.script = [503] * 10
    made = video(slow_clock, callback_url=f"{receiver.url}/hook")
    slow_clock.finish(made["id"])
    wait_until(lambda: slow_clock.stats()["callbacks"]["failed"] == 1)
    assert len(receiver.calls) == 4


def test_callbacks_to_remote_hosts_are_not_sent(slow_clock):
    made = video(slow_clock, callback_url="https://hooks.example.com/luma")
    slow_clock.finish(made["id"])
    assert slow_clock.stats()["callbacks"]["skipped_remote"] == 1
    assert slow_clock.callbacks()[0]["outcome"] == "skipped_remote"


# -- faults ---------------------------------------------------------------------------------------------------------


def test_dropped_callbacks_never_arrive(slow_clock, receiver):
    slow_clock.faults(drop_callbacks=1.0)
    made = video(slow_clock, callback_url=f"{receiver.url}/hook")
    slow_clock.finish(made["id"], "dreaming")
    slow_clock.finish(made["id"])
    time.sleep(0.3)
    assert receiver.calls == []
    assert slow_clock.stats()["callbacks"]["dropped"] == 2


def test_duplicated_callbacks_arrive_twice(slow_clock, receiver):
    slow_clock.faults(duplicate_callbacks=1.0)
    made = video(slow_clock, callback_url=f"{receiver.url}/hook")
    slow_clock.finish(made["id"], "dreaming")
    slow_clock.finish(made["id"])
    wait_until(lambda: len(receiver.calls) == 4)
    assert receiver.states() == ["dreaming", "dreaming", "completed", "completed"]


def test_reordered_callbacks_deliver_dreaming_after_completed(slow_clock, receiver):
    slow_clock.faults(reorder_callbacks=1.0)
    made = video(slow_clock, callback_url=f"{receiver.url}/hook")
    slow_clock.finish(made["id"], "dreaming")
    time.sleep(0.2)
    assert receiver.calls == []
    slow_clock.finish(made["id"])
    wait_until(lambda: len(receiver.calls) == 2)
    assert receiver.states() == ["completed", "dreaming"]


def test_delayed_callbacks_arrive_late(slow_clock, receiver):
    slow_clock.faults(delay_callbacks=0.5)
    made = video(slow_clock, callback_url=f"{receiver.url}/hook")
    started = time.monotonic()
    slow_clock.finish(made["id"])
    wait_until(lambda: receiver.calls)
    assert receiver.calls[0]["at"] - started >= 0.5


def test_a_share_of_gets_fail_with_server_errors(slow_clock):
    slow_clock.faults(get_5xx=0.5)
    statuses = [get(slow_clock, "/credits").status_code for _ in range(40)]
    created = post(slow_clock, "/generations/video", {"model": "ray-2", "prompt": PROMPT})
    assert 5 < sum(s >= 500 for s in statuses) < 35
    assert set(statuses) <= {200, 500, 502, 503}
    assert created.status_code == 201  # only reads fail


def test_a_429_burst_refuses_the_next_requests_then_lets_them_through(slow_clock):
    slow_clock.faults(burst_429=2)
    answers = [post(slow_clock, "/generations/video", {"model": "ray-2", "prompt": PROMPT}) for _ in range(3)]
    assert [a.status_code for a in answers] == [429, 429, 201]
    assert answers[0].headers["Retry-After"] == "1"
    assert slow_clock.faults()["burst_429"] == 0
    assert slow_clock.creates() == {"count": 1, "ids": [answers[2].json()["id"]], "attempts": 3,
                                    "callback_url_contains": ""}


def test_a_cut_download_stops_halfway_through(luma_sim):
    luma_sim.config(asset_bytes=2_000_000)
    url = asset_url(completed_video(luma_sim))
    luma_sim.faults(cut_downloads=1)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(url, timeout=10).content  # noqa: B018
    whole = requests.get(url, timeout=10)
    assert len(whole.content) == 2_000_000
    assert luma_sim.stats()["assets"]["cut"] == 1


def test_expired_asset_urls_are_403_and_a_fresh_get_gives_a_working_one(luma_sim):
    luma_sim.faults(expire_asset_urls=0.5)
    done = completed_video(luma_sim)
    stale = asset_url(done)
    assert requests.get(stale, timeout=5).status_code == 200
    assert requests.get(stale.split("?")[0], timeout=5).status_code == 403

    time.sleep(0.6)
    expired = requests.get(stale, timeout=5)
    fresh = asset_url(get(luma_sim, f"/generations/{done['id']}").json())

    assert (expired.status_code, expired.json()) == (403, {"detail": "Request has expired"})
    assert fresh != stale
    assert requests.get(fresh, timeout=5).status_code == 200


def test_asset_downloads_can_be_throttled(luma_sim):
    luma_sim.config(asset_bytes=1_000_000, asset_rate=2_000_000)
    url = asset_url(completed_video(luma_sim))
    started = time.monotonic()
    assert len(requests.get(url, timeout=10).content) == 1_000_000
    assert time.monotonic() - started >= 0.4


def test_slow_answers_take_their_time(luma_sim):
    luma_sim.faults(slow_responses=0.3)
    started = time.monotonic()
    assert get(luma_sim, "/ping").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_the_list_answers_500_for_a_window_while_single_gets_still_work(slow_clock):
    made = video(slow_clock)
    slow_clock.faults(list_500_for=0.5)

    during = [get(slow_clock, "/generations") for _ in range(3)]
    one = get(slow_clock, f"/generations/{made['id']}")
    assert [a.status_code for a in during] == [500, 500, 500]
    assert during[0].json() == {"detail": "Internal Server Error"}
    assert one.status_code == 200
    assert 0 < slow_clock.faults()["list_500_for"] <= 0.5

    time.sleep(0.6)
    after = get(slow_clock, "/generations")
    assert after.status_code == 200
    assert [g["id"] for g in after.json()["generations"]] == [made["id"]]
    assert slow_clock.faults()["list_500_for"] == 0
    assert slow_clock.stats()["faults_fired"]["list_500_for"] == 3


def test_a_list_window_set_on_the_command_line_starts_with_the_simulator(tmp_path):
    sim = start_simulator("--list-500-for", "30", log_path=tmp_path / "sim.log")
    try:
        headers = {"Authorization": "Bearer k"}
        listed = requests.get(f"{sim.root}/dream-machine/v1/generations", headers=headers, timeout=5)
        assert listed.status_code == 500
        assert requests.get(f"{sim.root}/dream-machine/v1/credits", headers=headers, timeout=5).status_code == 200
        requests.post(f"{sim.root}/_sim/faults", json={"list_500_for": 0}, timeout=5).raise_for_status()
        assert requests.get(f"{sim.root}/dream-machine/v1/generations", headers=headers, timeout=5).status_code == 200
    finally:
        stop_simulator(sim)


def test_a_create_whose_answer_is_lost_still_exists_and_is_billed_once(slow_clock):
    slow_clock.faults(drop_after_create=1)
    start = get(slow_clock, "/credits").json()["credit_balance"]
    with pytest.raises(requests.ConnectionError):
        post(slow_clock, "/generations/video", {"model": "ray-2", "prompt": PROMPT, "callback_url":
                                                "http://127.0.0.1:9/hook?token=lost-1"})
    found = slow_clock.creates("token=lost-1")
    assert found["count"] == 1
    listed = get(slow_clock, "/generations").json()["generations"]
    assert [g["id"] for g in listed] == found["ids"]
    assert get(slow_clock, "/credits").json()["credit_balance"] == start - 175.0


# -- the /_sim API ----------------------------------------------------------------------------------------------------


def test_reset_forgets_generations_and_restores_startup_settings(luma_sim):
    luma_sim.faults(get_5xx=0.2, expire_asset_urls=3)
    luma_sim.config(asset_bytes=1000, credits=500.0)
    video(luma_sim, prompt="to be forgotten")

    luma_sim.reset()

    assert luma_sim.generations() == []
    assert set(luma_sim.faults().values()) == {0}
    settings = luma_sim.config()
    assert (settings["asset_bytes"], settings["credits"], settings["time_scale"]) == (0, 100000.0, 0.05)
    assert luma_sim.stats()["requests"] == {}


def test_bad_fault_and_config_names_are_refused(luma_sim):
    assert requests.post(f"{luma_sim.root}/_sim/faults", json={"drop_everything": 1}, timeout=5).status_code == 400
    assert requests.post(f"{luma_sim.root}/_sim/faults", json={"get_5xx": 1.5}, timeout=5).status_code == 400
    assert requests.post(f"{luma_sim.root}/_sim/config", json={"time_scale": "fast"}, timeout=5).status_code == 400


def test_stats_count_requests_per_endpoint_and_per_generation(slow_clock):
    made = video(slow_clock)
    for _ in range(3):
        get(slow_clock, f"/generations/{made['id']}")
    get(slow_clock, "/generations")
    stats = slow_clock.stats()
    assert stats["requests"] == {"POST /generations/video": 1, "GET /generations/{id}": 3, "GET /generations": 1}
    assert stats["per_generation"] == {made["id"]: 3}


def test_the_introspection_lists_every_generation_in_creation_order(slow_clock):
    ids = [video(slow_clock, callback_url=f"http://127.0.0.1:9/hook?token=t{i}")["id"] for i in range(3)]
    slow_clock.finish(ids[1], "failed", "Job failed")
    listed = slow_clock.generations()
    assert [g["id"] for g in listed] == ids
    assert [g["seq"] for g in listed] == [0, 1, 2]
    assert listed[1]["state"] == "failed" and listed[1]["failure_reason"] == "Job failed"
    assert listed[2]["callback_url"].endswith("token=t2")
    assert slow_clock.creates("token=t1")["ids"] == [ids[1]]


# -- the process ------------------------------------------------------------------------------------------------------


def test_flags_set_keys_and_faults_and_the_state_file_survives_a_restart(tmp_path):
    state = tmp_path / "state.json"
    flags = ["--api-key", "team-key", "--burst-429", "1", "--state-file", str(state), "--time-scale", "10", "--verbose"]
    sim = start_simulator(*flags, log_path=tmp_path / "sim.log")
    try:
        root = f"{sim.root}/dream-machine/v1"
        key = {"Authorization": "Bearer team-key"}
        assert requests.get(f"{root}/ping", headers={"Authorization": "Bearer other"}, timeout=5).status_code == 401
        assert requests.get(f"{root}/ping", headers=key, timeout=5).status_code == 429
        made = requests.post(f"{root}/generations/video", json={"model": "ray-2", "prompt": PROMPT}, headers=key,
                             timeout=5).json()
    finally:
        stop_simulator(sim)
    assert sim.process.returncode == 0
    assert "team-key" not in (tmp_path / "sim.log").read_text()

    again = start_simulator(*flags, log_path=tmp_path / "sim2.log")
    try:
        root = f"{again.root}/dream-machine/v1"
        requests.get(f"{root}/ping", headers={"Authorization": "Bearer team-key"}, timeout=5)  # uses up the 429
        back = requests.get(f"{root}/generations/{made['id']}", headers={"Authorization": "Bearer team-key"}, timeout=5)
        assert back.json() == made
    finally:
        stop_simulator(again)



def test_a_killed_simulator_restarted_on_its_state_file_keeps_every_generation_and_its_clock(tmp_path):
    """`manage.py up` restarts the simulator on var/simulator-state.json: a SIGKILL must not lose what Luma made."""
    flags = ["--state-file", str(tmp_path / "state.json"), "--time-scale", "0.2", "--jitter", "0"]  # 0.6 s + 4 s
    key = {"Authorization": "Bearer any-key"}
    sim = start_simulator(*flags, log_path=tmp_path / "sim.log")
    api = f"{sim.root}/dream-machine/v1"
    made_at = time.monotonic()
    running = requests.post(f"{api}/generations/video", json={"model": "ray-2", "prompt": PROMPT}, headers=key,
                            timeout=5).json()
    done = requests.post(f"{api}/generations/video", json={"model": "ray-2", "prompt": PROMPT}, headers=key,
                         timeout=5).json()
    requests.post(f"{sim.root}/_sim/generations/{done['id']}/finish", json={"state": "completed"}, timeout=5)
    before = requests.get(f"{api}/generations/{done['id']}", headers=key, timeout=5).json()
    video_before = requests.get(before["assets"]["video"], timeout=10).content
    wait_until(lambda: requests.get(f"{api}/generations/{running['id']}", headers=key, timeout=5).json()["state"]
               == "dreaming")
    time.sleep(0.4)  # the state file is written within 0.2 s of a change
    sim.process.kill()
    sim.process.wait()
    time.sleep(max(0.0, made_at + 2.0 - time.monotonic()))  # down for a while: 2 s of its 4 s of dreaming pass

    again = start_simulator(*flags, log_path=tmp_path / "sim2.log")
    try:
        api = f"{again.root}/dream-machine/v1"
        after = requests.get(f"{api}/generations/{done['id']}", headers=key, timeout=5)
        assert after.status_code == 200 and after.json()["state"] == "completed"
        assert requests.get(after.json()["assets"]["video"], timeout=10).content == video_before

        back = requests.get(f"{api}/generations/{running['id']}", headers=key, timeout=5)
        assert back.status_code == 200 and back.json()["state"] == "dreaming"
        wait_until(lambda: requests.get(f"{api}/generations/{running['id']}", headers=key, timeout=5).json()["state"]
                   == "completed", timeout=10)
        # Its clock went on: it finished on its first schedule (4.6 s after the create), not after 4 s of dreaming
        # counted again from the restart (6 s or later).
        assert time.monotonic() - made_at < 5.6
        final = requests.get(f"{api}/generations/{running['id']}", headers=key, timeout=5).json()
        clip = requests.get(final["assets"]["video"], headers={"Range": "bytes=0-"}, timeout=10)
        assert clip.status_code == 206 and clip.content[4:8] == b"ftyp"
    finally:
        stop_simulator(again)

def test_the_management_command_forwards_its_flags_to_the_simulator(capsys):
    from generations.management.commands.luma_simulator import Command

    with pytest.raises(SystemExit) as stopped:
        Command().run_from_argv(["manage.py", "luma_simulator", "--help"])

    assert stopped.value.code == 0
    out = capsys.readouterr().out
    assert "manage.py luma_simulator" in out
    assert "--time-scale" in out and "--drop-after-create" in out
