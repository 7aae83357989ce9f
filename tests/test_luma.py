"""generations.luma against `responses`: the exact requests it sends, how every answer maps to a typed error, what
is retried (reads) and what never is (creates), tolerant parsing, asset downloads, and the key staying secret."""

import email.utils
import http.client
import json
import logging
import socket
from datetime import datetime, timedelta, timezone

import pytest
import requests
import responses
import urllib3.exceptions
from django.test import override_settings
from responses import matchers

from generations import luma

pytestmark = pytest.mark.no_db

BASE = "https://api.lumalabs.ai/dream-machine/v1"
KEY = "luma-0123456789abcdef-secret"
CDN = "https://storage.cdn-luma.com/dream_machine/d1968551/video.mp4"
GEN_ID = "d1968551-6113-4b46-b567-09210c2e79b0"
OTHER_ID = "d312d37a-7ff4-49f2-94f8-218f3fe2a4bd"
TIMEOUT = (3.0, 7.0)

QUEUED = {
    "id": GEN_ID, "generation_type": "video", "state": "queued", "failure_reason": None,
    "created_at": "2025-03-01T12:00:00.000000Z", "assets": None, "model": "ray-2",
    "request": {"generation_type": "video", "model": "ray-2", "prompt": "A tiger walking in snow",
                "callback_url": "https://team.example/webhooks/luma/tok123/"},
}
COMPLETED = {
    **QUEUED, "state": "completed",
    "assets": {"video": CDN, "image": None, "progress_video": None},
}


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(sleeps):
    with luma.LumaClient(KEY, BASE, timeout=TIMEOUT, get_retries=3, backoff=0.5, sleep=sleeps.append,
                         allowed_asset_hosts=["storage.cdn-luma.com", "127.0.0.1:9011"]) as client:
        yield client


@pytest.fixture
def rsps():
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


def sent_json(call) -> dict:
    return json.loads(call.request.body)


def refused_error(url=BASE) -> requests.exceptions.ConnectionError:
    """What requests raises when nothing listens on the port."""
    reason = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection: [Errno 111] Connection refused")
    return requests.exceptions.ConnectionError(urllib3.exceptions.MaxRetryError(None, url, reason))


def dropped_error() -> requests.exceptions.ConnectionError:
    """What requests raises when the server closes the connection after receiving the request."""
    cause = http.client.RemoteDisconnected("Remote end closed connection without response")
    return requests.exceptions.ConnectionError(urllib3.exceptions.ProtocolError("Connection aborted.", cause))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- creates: the exact bodies ------------------------------------------------------------------------------

IMAGE = "https://example.com/frame.jpg"
END_IMAGE = "https://example.com/end.jpg"
SEED_MODES = {
    "text": ({}, {}),
    "start frame": ({"keyframes": {"frame0": {"type": "image", "url": IMAGE}}},
                    {"keyframes": {"frame0": {"type": "image", "url": IMAGE}}}),
    "start frame + loop": ({"keyframes": {"frame0": {"type": "image", "url": IMAGE}}, "loop": True},
                           {"keyframes": {"frame0": {"type": "image", "url": IMAGE}}, "loop": True}),
    "end frame": ({"keyframes": {"frame1": {"type": "image", "url": END_IMAGE}}},
                  {"keyframes": {"frame1": {"type": "image", "url": END_IMAGE}}}),
    "start and end frames": (
        {"keyframes": {"frame0": {"type": "image", "url": IMAGE}, "frame1": {"type": "image", "url": END_IMAGE}}},
        {"keyframes": {"frame0": {"type": "image", "url": IMAGE}, "frame1": {"type": "image", "url": END_IMAGE}}}),
    "extend": ({"keyframes": {"frame0": {"type": "generation", "id": GEN_ID}}},
               {"keyframes": {"frame0": {"type": "generation", "id": GEN_ID}}}),
    "reverse extend": ({"keyframes": {"frame1": {"type": "generation", "id": GEN_ID}}},
                       {"keyframes": {"frame1": {"type": "generation", "id": GEN_ID}}}),
    "interpolate": (
        {"keyframes": {"frame0": {"type": "generation", "id": OTHER_ID}, "frame1": {"type": "generation", "id": GEN_ID}}},
        {"keyframes": {"frame0": {"type": "generation", "id": OTHER_ID}, "frame1": {"type": "generation", "id": GEN_ID}}}),
}


@pytest.mark.parametrize("mode", SEED_MODES)
def test_every_seed_mode_posts_exactly_the_sdk_body(client, rsps, mode):
    kwargs, extra = SEED_MODES[mode]
    rsps.post(f"{BASE}/generations/video", json=QUEUED, status=201)
    created = client.create_video(prompt="A teddy bear in sunglasses playing electric guitar", **kwargs)
    assert created.id == GEN_ID and created.state == "queued"
    (call,) = rsps.calls
    assert sent_json(call) == {"prompt": "A teddy bear in sunglasses playing electric guitar", "model": "ray-2", **extra}
    assert call.request.headers["Authorization"] == f"Bearer {KEY}"
    assert call.request.headers["Content-Type"] == "application/json"


def test_every_video_option_is_sent_and_concepts_become_key_objects(client, rsps):
    rsps.post(f"{BASE}/generations/video", json=QUEUED, status=201)
    client.create_video(prompt="A tiger", model="ray-flash-2", aspect_ratio="9:16", loop=False, resolution="1080p",
                        duration="9s", concepts=["dolly_zoom", "handheld"], callback_url="https://team.example/cb/x/")
    assert sent_json(rsps.calls[0]) == {
        "prompt": "A tiger", "model": "ray-flash-2", "aspect_ratio": "9:16", "loop": False, "resolution": "1080p",
        "duration": "9s", "concepts": [{"key": "dolly_zoom"}, {"key": "handheld"}],
        "callback_url": "https://team.example/cb/x/",
    }


def test_none_fields_and_empty_keyframe_slots_are_left_out_not_sent_as_null(client, rsps):
    rsps.post(f"{BASE}/generations/video", json=QUEUED, status=201)
    client.create_video(prompt="A tiger", aspect_ratio=None, loop=None, resolution=None, duration=None, concepts=None,
                        callback_url=None, keyframes={"frame0": None, "frame1": {"type": "image", "url": END_IMAGE}})
    assert sent_json(rsps.calls[0]) == {"prompt": "A tiger", "model": "ray-2",
                                        "keyframes": {"frame1": {"type": "image", "url": END_IMAGE}}}


def test_an_image_create_sends_references_as_given(client, rsps):
    rsps.post(f"{BASE}/generations/image", json={**QUEUED, "generation_type": "image", "model": "photon-1"}, status=201)
    created = client.create_image(
        prompt="A red fox", aspect_ratio="1:1", format="png",
        image_ref=[{"url": IMAGE, "weight": 0.85}], style_ref=[{"url": END_IMAGE, "weight": 0.8}],
        character_ref={"identity0": {"images": [IMAGE]}}, modify_image_ref={"url": IMAGE, "weight": 0.1},
        callback_url="https://team.example/cb/y/",
    )
    assert created.kind == "image"
    assert sent_json(rsps.calls[0]) == {
        "prompt": "A red fox", "model": "photon-1", "aspect_ratio": "1:1", "format": "png",
        "image_ref": [{"url": IMAGE, "weight": 0.85}], "style_ref": [{"url": END_IMAGE, "weight": 0.8}],
        "character_ref": {"identity0": {"images": [IMAGE]}}, "modify_image_ref": {"url": IMAGE, "weight": 0.1},
        "callback_url": "https://team.example/cb/y/",
    }


def test_upscale_and_audio_post_to_the_source_generation(client, rsps):
    rsps.post(f"{BASE}/generations/{GEN_ID}/upscale", json={**QUEUED, "id": OTHER_ID}, status=201)
    rsps.post(f"{BASE}/generations/{GEN_ID}/audio", json={**QUEUED, "id": OTHER_ID}, status=201)
    assert client.upscale(GEN_ID, resolution="4k").id == OTHER_ID
    assert client.upscale(GEN_ID).id == OTHER_ID
    client.add_audio(GEN_ID, prompt="rain on a tin roof", negative_prompt="music", callback_url="https://t.example/c/")
    assert [sent_json(c) for c in rsps.calls] == [
        {"resolution": "4k"}, {},
        {"prompt": "rain on a tin roof", "negative_prompt": "music", "callback_url": "https://t.example/c/"},
    ]


def test_modify_and_reframe_send_their_generation_type_and_media_objects(client, rsps):
    for path in ("video/modify", "video/reframe", "image/reframe"):
        rsps.post(f"{BASE}/generations/{path}", json=QUEUED, status=201)
    client.modify_video(media="https://example.com/in.mp4", mode="flex_2", prompt="as a watercolour",
                        first_frame="https://example.com/first.jpg")
    client.reframe_video(media={"url": "https://example.com/in.mp4"}, aspect_ratio="9:16", model="ray-flash-2",
                         grid_position_x=10, grid_position_y=20, x_start=0, x_end=640, resized_width=640)
    client.reframe_image(media="https://example.com/in.jpg", aspect_ratio="21:9", format="jpg", y_start=5, y_end=300,
                         resized_height=300)
    assert [sent_json(c) for c in rsps.calls] == [
        {"generation_type": "modify_video", "media": {"url": "https://example.com/in.mp4"}, "mode": "flex_2",
         "model": "ray-2", "prompt": "as a watercolour", "first_frame": {"url": "https://example.com/first.jpg"}},
        {"generation_type": "reframe_video", "media": {"url": "https://example.com/in.mp4"}, "model": "ray-flash-2",
         "aspect_ratio": "9:16", "grid_position_x": 10, "grid_position_y": 20, "x_start": 0, "x_end": 640,
         "resized_width": 640},
        {"generation_type": "reframe_image", "media": {"url": "https://example.com/in.jpg"}, "model": "photon-1",
         "aspect_ratio": "21:9", "format": "jpg", "y_start": 5, "y_end": 300, "resized_height": 300},
    ]


def test_a_missing_source_id_is_rejected_without_asking_luma(client, rsps):
    with pytest.raises(luma.LumaRejected) as caught:
        client.upscale("")
    with pytest.raises(luma.LumaRejected):
        client.get(None)
    assert caught.value.status is None and "generation id" in caught.value.detail
    assert len(rsps.calls) == 0


def test_a_create_answered_with_any_2xx_is_accepted(client, rsps):
    rsps.post(f"{BASE}/generations/video", json=QUEUED, status=200)
    assert client.create_video(prompt="A tiger").id == GEN_ID


# --- status mapping -----------------------------------------------------------------------------------------

UNPROCESSABLE = {"detail": [
    {"type": "missing", "loc": ["body", "keyframes", "frame0", "url"], "msg": "Field required", "input": {}},
    {"type": "literal_error", "loc": ["body", "model"], "msg": "Input should be 'ray-2' or 'ray-flash-2'"},
]}


@pytest.mark.parametrize(("status", "body", "error", "detail"), [
    (400, {"detail": "Prompt is required"}, luma.LumaRejected, "Prompt is required"),
    (401, {"detail": "Invalid API key"}, luma.LumaAuthError, "Invalid API key"),
    (402, {"detail": "Insufficient credits"}, luma.LumaPaymentError, "Insufficient credits"),
    (403, {"detail": "Not allowed for this key"}, luma.LumaPaymentError, "Not allowed for this key"),
    (404, {"detail": "Generation not found"}, luma.LumaNotFound, "Generation not found"),
    (422, UNPROCESSABLE, luma.LumaRejected,
     "keyframes.frame0.url: Field required; model: Input should be 'ray-2' or 'ray-flash-2'"),
])
def test_client_errors_map_to_typed_errors_with_lumas_detail_and_are_not_retried(client, rsps, sleeps, status,
                                                                                 body, error, detail):
    rsps.post(f"{BASE}/generations/video", json=body, status=status)
    rsps.get(f"{BASE}/generations/{GEN_ID}", json=body, status=status)
    for call in (lambda: client.create_video(prompt="A tiger"), lambda: client.get(GEN_ID)):
        with pytest.raises(error) as caught:
            call()
        assert type(caught.value) is error
        assert caught.value.status == status
        assert caught.value.detail == detail
        assert caught.value.retryable is False
        assert detail in str(caught.value)
    assert len(rsps.calls) == 2 and sleeps == []


def test_a_401_reads_as_a_sentence_about_the_key(client, rsps):
    rsps.get(f"{BASE}/credits", json={"detail": "Invalid API key"}, status=401)
    with pytest.raises(luma.LumaAuthError) as caught:
        client.credits()
    assert str(caught.value).startswith("Luma rejected the API key")


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_read_that_keeps_failing_with_5xx_raises_a_retryable_server_error_after_all_attempts(client, rsps, sleeps,
                                                                                               status):
    rsps.get(f"{BASE}/generations/{GEN_ID}", json={"detail": "Internal Server Error"}, status=status)
    with pytest.raises(luma.LumaServerError) as caught:
        client.get(GEN_ID)
    assert caught.value.status == status and caught.value.retryable is True
    assert caught.value.detail == "Internal Server Error"
    assert len(rsps.calls) == 3 and len(sleeps) == 2


def test_429_with_retry_after_seconds(client, rsps):
    rsps.post(f"{BASE}/generations/video", json={"detail": "Too many concurrent generations"}, status=429,
              headers={"Retry-After": "7"})
    with pytest.raises(luma.LumaRateLimited) as caught:
        client.create_video(prompt="A tiger")
    assert caught.value.retry_after == 7.0 and caught.value.retryable is True and caught.value.status == 429
    assert caught.value.detail == "Too many concurrent generations"
    assert len(rsps.calls) == 1  # nothing was created, and the caller decides when to come back


def test_429_with_an_http_date_and_with_milliseconds_and_with_nothing(client, rsps):
    when = email.utils.format_datetime(datetime.now(timezone.utc) + timedelta(seconds=20), usegmt=True)
    rsps.post(f"{BASE}/generations/video", status=429, headers={"Retry-After": when})
    rsps.post(f"{BASE}/generations/image", status=429, headers={"retry-after-ms": "1500"})
    rsps.post(f"{BASE}/generations/{GEN_ID}/audio", status=429, body="slow down")
    waits = []
    for call in (lambda: client.create_video(prompt="A tiger"), lambda: client.create_image(prompt="A fox"),
                 lambda: client.add_audio(GEN_ID)):
        with pytest.raises(luma.LumaRateLimited) as caught:
            call()
        waits.append(caught.value.retry_after)
    assert 17 <= waits[0] <= 20
    assert waits[1:] == [1.5, 10.0]


def test_error_bodies_that_are_not_json_or_are_huge_are_read_as_truncated_text(client, rsps):
    rsps.get(f"{BASE}/ping", body="<html><body>Bad   gateway</body></html>", status=418)
    rsps.get(f"{BASE}/credits", body="x" * 5000, status=400)
    with pytest.raises(luma.LumaError) as caught:
        client.ping()
    assert caught.value.detail == "<html><body>Bad gateway</body></html>" and caught.value.status == 418
    with pytest.raises(luma.LumaRejected) as caught:
        client.credits()
    assert len(caught.value.detail) == 500 and caught.value.detail.endswith("…")


def test_an_empty_error_body_falls_back_to_the_reason_phrase(client, rsps):
    rsps.get(f"{BASE}/generations/{GEN_ID}", body="", status=404)
    with pytest.raises(luma.LumaNotFound) as caught:
        client.get(GEN_ID)
    assert caught.value.detail == "Not Found"


# --- reads are retried ------------------------------------------------------------------------------------------

def test_a_read_is_retried_after_a_5xx_with_backoff_and_then_succeeds(client, rsps, sleeps):
    rsps.get(f"{BASE}/generations/{GEN_ID}", status=503)
    rsps.get(f"{BASE}/generations/{GEN_ID}", status=502)
    rsps.get(f"{BASE}/generations/{GEN_ID}", json=COMPLETED)
    assert client.get(GEN_ID).state == "completed"
    assert len(rsps.calls) == 3
    assert 0.375 <= sleeps[0] <= 0.5 and 0.75 <= sleeps[1] <= 1.0  # 0.5 * 2**n, times jitter in [0.75, 1]


def test_a_read_after_429_waits_what_luma_asked_but_never_very_long(client, rsps, sleeps):
    rsps.get(f"{BASE}/credits", status=429, headers={"Retry-After": "2"})
    rsps.get(f"{BASE}/credits", status=429, headers={"Retry-After": "3600"})
    rsps.get(f"{BASE}/credits", json={"credit_balance": 1234.5})
    assert client.credits() == 1234.5
    assert sleeps == [2.0, luma.MAX_RETRY_SLEEP]


def test_a_read_is_retried_after_a_connection_error_and_a_timeout(client, rsps, sleeps):
    rsps.get(f"{BASE}/generations", body=refused_error())
    rsps.get(f"{BASE}/generations", body=requests.exceptions.ReadTimeout("Read timed out."))
    rsps.get(f"{BASE}/generations", json={"generations": [COMPLETED], "count": 1, "has_more": False,
                                          "limit": 10, "offset": 0})
    page = client.list()
    assert [g.id for g in page.generations] == [GEN_ID]
    assert len(rsps.calls) == 3 and len(sleeps) == 2


def test_a_read_gives_up_after_get_retries_attempts_with_the_typed_error(client, rsps, sleeps):
    rsps.get(f"{BASE}/ping", body=requests.exceptions.ReadTimeout("Read timed out."))
    with pytest.raises(luma.LumaTimeout) as caught:
        client.ping()
    assert caught.value.retryable is True and caught.value.status is None
    assert len(rsps.calls) == 3 and len(sleeps) == 2
    rsps.get(f"{BASE}/credits", body=refused_error())
    with pytest.raises(luma.LumaConnectionError):
        client.credits()
    assert len(rsps.calls) == 6


@pytest.mark.parametrize(("method", "path"), [
    ("list", "/generations"), ("concepts", "/generations/concepts/list"),
    ("camera_motions", "/generations/camera_motion/list"), ("credits", "/credits"), ("ping", "/ping"),
])
def test_every_read_is_retried(client, rsps, method, path):
    bodies = {"list": {"generations": []}, "concepts": ["dolly_zoom"], "camera_motions": ["camera orbit left"],
              "credits": {"credit_balance": 5}, "ping": {"message": "pong"}}
    rsps.get(BASE + path, status=500)
    rsps.get(BASE + path, json=bodies[method])
    getattr(client, method)()
    assert len(rsps.calls) == 2


def test_get_retries_of_one_means_a_single_attempt(rsps, sleeps):
    client = luma.LumaClient(KEY, BASE, get_retries=1, sleep=sleeps.append)
    rsps.get(f"{BASE}/ping", status=503)
    with pytest.raises(luma.LumaServerError):
        client.ping()
    assert len(rsps.calls) == 1 and sleeps == []


# --- creates are never retried ----------------------------------------------------------------------------------

@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_create_answered_with_5xx_is_sent_once_and_its_outcome_is_unknown(client, rsps, sleeps, status):
    rsps.post(f"{BASE}/generations/video", json={"detail": "Internal Server Error"}, status=status)
    with pytest.raises(luma.LumaOutcomeUnknown) as caught:
        client.create_video(prompt="A tiger")
    error = caught.value
    assert error.maybe_created is True and error.retryable is False and error.status == status
    assert "could bill twice" in str(error)
    assert len(rsps.calls) == 1 and sleeps == []


@pytest.mark.parametrize("failure", [
    requests.exceptions.ReadTimeout("Read timed out. (read timeout=7)"),
    dropped_error(),
    requests.exceptions.ChunkedEncodingError(urllib3.exceptions.ProtocolError("Connection broken: IncompleteRead")),
], ids=["read timeout", "dropped connection", "cut body"])
def test_a_create_whose_answer_is_lost_is_sent_once_and_its_outcome_is_unknown(client, rsps, sleeps, failure):
    rsps.post(f"{BASE}/generations/image", body=failure)
    with pytest.raises(luma.LumaOutcomeUnknown) as caught:
        client.create_image(prompt="A red fox")
    assert caught.value.maybe_created and not caught.value.retryable and caught.value.status is None
    assert len(rsps.calls) == 1 and sleeps == []


@pytest.mark.parametrize("answer", [{"body": "<html>ok</html>"}, {"json": {"state": "queued"}}])
def test_a_2xx_create_without_a_generation_id_is_an_unknown_outcome(client, rsps, answer):
    rsps.post(f"{BASE}/generations/video", status=201, **answer)
    with pytest.raises(luma.LumaOutcomeUnknown):
        client.create_video(prompt="A tiger")
    assert len(rsps.calls) == 1


@pytest.mark.parametrize("failure", [refused_error(), requests.exceptions.ConnectTimeout("connect timed out")],
                         ids=["refused", "connect timeout"])
def test_a_create_that_could_not_connect_says_nothing_was_sent_and_may_be_retried(client, rsps, sleeps, failure):
    rsps.post(f"{BASE}/generations/video", body=failure)
    with pytest.raises(luma.LumaConnectionError) as caught:
        client.create_video(prompt="A tiger")
    assert caught.value.retryable is True and not isinstance(caught.value, luma.LumaOutcomeUnknown)
    assert "nothing was sent" in str(caught.value)
    assert len(rsps.calls) == 1 and sleeps == []


def test_a_create_to_a_port_where_nothing_listens_raises_connection_error(sleeps):
    client = luma.LumaClient(KEY, f"http://127.0.0.1:{closed_port()}/dream-machine/v1", sleep=sleeps.append)
    with pytest.raises(luma.LumaConnectionError) as caught:
        client.create_video(prompt="A tiger")
    assert "refused" in str(caught.value).lower()
    with pytest.raises(luma.LumaConnectionError):
        client.ping()
    assert len(sleeps) == 2


# --- delete --------------------------------------------------------------------------------------------------

def test_delete_accepts_any_2xx_and_asks_for_no_json(client, rsps):
    rsps.delete(f"{BASE}/generations/{GEN_ID}", status=204)
    rsps.delete(f"{BASE}/generations/{OTHER_ID}", json={"deleted": True}, status=200)
    assert client.delete(GEN_ID) is None
    assert client.delete(OTHER_ID) is None
    assert rsps.calls[0].request.headers["Accept"] == "*/*"


def test_deleting_an_unknown_generation_raises_not_found_once(client, rsps, sleeps):
    rsps.delete(f"{BASE}/generations/{GEN_ID}", json={"detail": "Generation not found"}, status=404)
    with pytest.raises(luma.LumaNotFound):
        client.delete(GEN_ID)
    assert len(rsps.calls) == 1 and sleeps == []


@pytest.mark.parametrize("first", [{"body": requests.exceptions.ReadTimeout("Read timed out.")}, {"status": 503}],
                         ids=["timeout", "503"])
def test_a_404_on_a_delete_retry_after_a_lost_answer_means_it_was_deleted(client, rsps, first):
    rsps.delete(f"{BASE}/generations/{GEN_ID}", **first)
    rsps.delete(f"{BASE}/generations/{GEN_ID}", json={"detail": "Generation not found"}, status=404)
    assert client.delete(GEN_ID) is None
    assert len(rsps.calls) == 2


def test_a_404_after_a_delete_that_never_connected_is_still_not_found(client, rsps):
    rsps.delete(f"{BASE}/generations/{GEN_ID}", body=refused_error())
    rsps.delete(f"{BASE}/generations/{GEN_ID}", json={"detail": "Generation not found"}, status=404)
    with pytest.raises(luma.LumaNotFound):
        client.delete(GEN_ID)


# --- reads: answers ------------------------------------------------------------------------------------------

def test_list_sends_limit_and_offset_and_reads_the_page(client, rsps):
    rsps.get(f"{BASE}/generations", match=[matchers.query_param_matcher({"limit": "100", "offset": "200"})],
             json={"generations": [COMPLETED, QUEUED], "count": 2, "has_more": True, "limit": 100, "offset": 200})
    page = client.list(limit=100, offset=200)
    assert isinstance(page, luma.GenerationPage)
    assert [g.state for g in page.generations] == ["completed", "queued"]
    assert (page.count, page.has_more, page.limit, page.offset) == (2, True, 100, 200)


def test_concepts_credits_and_ping(client, rsps):
    rsps.get(f"{BASE}/generations/concepts/list", json=["dolly_zoom", "handheld"])
    rsps.get(f"{BASE}/credits", json={"credit_balance": 99812})
    rsps.get(f"{BASE}/ping", json={"message": "pong"})
    assert client.concepts() == ["dolly_zoom", "handheld"]
    assert client.credits() == 99812.0 and isinstance(client.credits(), float)
    assert client.ping() == "pong"


def test_concepts_given_as_key_objects_are_read_too(client, rsps):
    rsps.get(f"{BASE}/generations/concepts/list", json=[{"key": "pan_left"}, {"key": "zoom_in"}, 3, None])
    assert client.concepts() == ["pan_left", "zoom_in"]


def test_a_credits_answer_without_a_balance_is_an_error_not_zero(client, rsps):
    rsps.get(f"{BASE}/credits", json={"balance": 3})
    with pytest.raises(luma.LumaError, match="credit_balance"):
        client.credits()


def test_camera_motions_come_from_the_legacy_endpoint(client, rsps):
    rsps.get(f"{BASE}/generations/camera_motion/list", json=["camera orbit left", "camera push in"])
    assert client.camera_motions() == ["camera orbit left", "camera push in"]


def test_a_server_without_camera_motions_raises_feature_unavailable_once(client, rsps, sleeps):
    rsps.get(f"{BASE}/generations/camera_motion/list", json={"detail": "Not Found"}, status=404)
    with pytest.raises(luma.LumaFeatureUnavailable) as caught:
        client.camera_motions()
    assert isinstance(caught.value, luma.LumaNotFound)
    assert str(caught.value) == "This Luma server no longer offers the camera-motion list; use concepts instead"
    assert caught.value.status == 404 and caught.value.retryable is False
    assert len(rsps.calls) == 1 and sleeps == []


def test_a_2xx_read_that_is_not_json_is_an_error(client, rsps):
    rsps.get(f"{BASE}/generations/{GEN_ID}", body="<html>captive portal</html>")
    with pytest.raises(luma.LumaError, match="not JSON"):
        client.get(GEN_ID)


# --- parsing ----------------------------------------------------------------------------------------------------

def test_a_generation_is_parsed_from_the_documented_shape():
    generation = luma.Generation.from_json(COMPLETED)
    assert generation.id == GEN_ID and generation.state == "completed" and generation.kind == "video"
    assert generation.model == "ray-2" and generation.failure_reason is None
    assert generation.created_at == datetime(2025, 3, 1, 12, tzinfo=timezone.utc)
    assert generation.video_url == CDN and generation.image_url is None and generation.progress_video_url is None
    assert generation.request["prompt"] == "A tiger walking in snow"
    assert generation.callback_url == "https://team.example/webhooks/luma/tok123/"
    assert generation.raw is COMPLETED


def test_the_docs_image_example_with_type_and_an_odd_model_is_read():
    generation = luma.Generation.from_json({
        "id": OTHER_ID, "type": "image", "state": "COMPLETED", "model": "photon-v1.0",
        "assets": {"image": "https://storage.cdn-luma.com/x.jpg"}, "request": {"callback_url": None},
    })
    assert (generation.kind, generation.state, generation.model) == ("image", "completed", "photon-v1.0")
    assert generation.image_url == "https://storage.cdn-luma.com/x.jpg" and generation.video_url is None
    assert generation.callback_url is None


def test_a_legacy_generation_with_version_and_video_only_assets_is_read():
    generation = luma.Generation.from_json({"id": GEN_ID, "state": "dreaming", "version": "v1.6",
                                            "assets": {"video": None, "progress_video": "https://cdn/p.mp4"}})
    assert generation.model == "v1.6" and generation.kind is None
    assert generation.video_url is None and generation.progress_video_url == "https://cdn/p.mp4"


@pytest.mark.parametrize("assets", [None, {}, {"video": None, "image": None, "progress_video": None}, "junk", []])
def test_null_or_odd_assets_give_no_urls(assets):
    generation = luma.Generation.from_json({"id": GEN_ID, "state": "queued", "assets": assets})
    assert (generation.video_url, generation.image_url, generation.progress_video_url) == (None, None, None)


def test_missing_fields_are_none_and_unknown_fields_are_kept():
    generation = luma.Generation.from_json({"id": GEN_ID, "brand_new_field": {"x": 1}, "request": "junk"})
    assert generation.state is None and generation.created_at is None and generation.kind is None
    assert generation.request == {} and generation.callback_url is None
    assert generation.raw["brand_new_field"] == {"x": 1}


@pytest.mark.parametrize("data", [None, [], "a string", 42])
def test_a_body_that_is_not_an_object_gives_an_empty_generation(data):
    generation = luma.Generation.from_json(data)
    assert generation.id is None and generation.raw == {} and generation.request == {}


UTC = timezone.utc


@pytest.mark.parametrize(("text", "expected"), [
    ("2024-12-02T15:34:40.388000Z", datetime(2024, 12, 2, 15, 34, 40, 388000, UTC)),
    ("2023-06-01T12:00:00Z", datetime(2023, 6, 1, 12, tzinfo=UTC)),
    ("2023-06-01T12:00:00z", datetime(2023, 6, 1, 12, tzinfo=UTC)),
    ("2024-12-02T15:34:40.3Z", datetime(2024, 12, 2, 15, 34, 40, 300000, UTC)),
    ("2024-12-02T15:34:40.123456789Z", datetime(2024, 12, 2, 15, 34, 40, 123456, UTC)),
    ("2024-12-02T17:34:40+02:00", datetime(2024, 12, 2, 15, 34, 40, tzinfo=UTC)),
    ("2024-12-02T10:34:40.5-0500", datetime(2024, 12, 2, 15, 34, 40, 500000, UTC)),
    ("2024-12-02 15:34:40", datetime(2024, 12, 2, 15, 34, 40, tzinfo=UTC)),
    (1733153680, datetime(2024, 12, 2, 15, 34, 40, tzinfo=UTC)),
    ("garbage", None), ("2024-13-45T99:00:00Z", None), ("", None), (None, None), ({}, None), (True, None),
])
def test_created_at_is_read_tolerantly_as_an_aware_datetime(text, expected):
    parsed = luma.Generation.from_json({"created_at": text}).created_at
    assert parsed == expected
    assert parsed is None or parsed.tzinfo is not None


def test_a_page_without_has_more_keeps_paging_while_pages_are_full():
    full = luma.GenerationPage.from_json({"generations": [QUEUED, COMPLETED]}, limit=2, offset=0)
    short = luma.GenerationPage.from_json({"generations": [QUEUED]}, limit=2, offset=2)
    assert (full.count, full.has_more, full.limit, full.offset) == (2, True, 2, 0)
    assert (short.count, short.has_more) == (1, False)


def test_a_page_tolerates_junk_items_and_odd_shapes():
    page = luma.GenerationPage.from_json({"generations": [QUEUED, "junk", None], "count": "1", "has_more": False})
    assert [g.id for g in page.generations] == [GEN_ID] and page.count == 1 and page.has_more is False
    assert luma.GenerationPage.from_json([QUEUED]).generations[0].id == GEN_ID
    assert luma.GenerationPage.from_json(None).generations == []


# --- the key stays secret ------------------------------------------------------------------------------------

def test_the_key_is_in_no_repr_or_str_of_the_client(client):
    for text in (repr(client), str(client), repr(vars(client)), repr(client.session.__dict__)):
        assert KEY not in text


def test_the_key_is_in_no_error_even_when_luma_echoes_it(client, rsps):
    rsps.post(f"{BASE}/generations/video", json={"detail": f"Bearer {KEY} is not valid"}, status=401)
    rsps.post(f"{BASE}/generations/image", json={"detail": f"token {KEY}"}, status=500)
    rsps.get(f"{BASE}/generations/{GEN_ID}", body=refused_error())
    rsps.get(f"{BASE}/ping", body=requests.exceptions.ReadTimeout(f"timed out with {KEY}"))
    errors = []
    for call in (lambda: client.create_video(prompt="A tiger"), lambda: client.create_image(prompt="A fox"),
                 lambda: client.get(GEN_ID), lambda: client.ping()):
        with pytest.raises(luma.LumaError) as caught:
            call()
        errors.append(caught.value)
    for error in errors:
        assert KEY not in str(error) and KEY not in repr(error) and KEY not in error.detail
        assert all(KEY not in str(arg) for arg in error.args)
    assert "[api key]" in errors[0].detail


def test_a_malformed_key_is_refused_without_quoting_it():
    with pytest.raises(luma.LumaNotConfigured) as caught:
        luma.LumaClient("luma-abc def\n", BASE)
    assert "abc" not in str(caught.value)


def test_one_debug_line_per_call_without_headers_or_key(client, rsps, caplog):
    rsps.get(f"{BASE}/generations/{GEN_ID}", json=COMPLETED)
    rsps.post(f"{BASE}/generations/video", json=QUEUED, status=201)
    with caplog.at_level(logging.DEBUG, logger="lumaweb.luma"):
        client.get(GEN_ID)
        client.create_video(prompt="A tiger")
    lines = [r.getMessage() for r in caplog.records if r.name == "lumaweb.luma"]
    assert len(lines) == 2
    assert lines[0].startswith(f"GET /generations/{GEN_ID} -> 200 in ")
    assert lines[1].startswith("POST /generations/video -> 201 in ")
    assert all(KEY not in line and "Authorization" not in line and "Bearer" not in line for line in lines)


# --- timeouts -------------------------------------------------------------------------------------------------

def test_every_call_carries_the_connect_and_read_timeouts(client, rsps):
    rsps.post(f"{BASE}/generations/video", json=QUEUED, status=201)
    rsps.post(f"{BASE}/generations/image", json=QUEUED, status=201)
    rsps.post(f"{BASE}/generations/{GEN_ID}/upscale", json=QUEUED, status=201)
    rsps.post(f"{BASE}/generations/{GEN_ID}/audio", json=QUEUED, status=201)
    rsps.post(f"{BASE}/generations/video/modify", json=QUEUED, status=201)
    rsps.post(f"{BASE}/generations/video/reframe", json=QUEUED, status=201)
    rsps.post(f"{BASE}/generations/image/reframe", json=QUEUED, status=201)
    rsps.get(f"{BASE}/generations/{GEN_ID}", json=COMPLETED)
    rsps.get(f"{BASE}/generations", json={"generations": []})
    rsps.delete(f"{BASE}/generations/{GEN_ID}", status=204)
    rsps.get(f"{BASE}/generations/concepts/list", json=[])
    rsps.get(f"{BASE}/generations/camera_motion/list", json=[])
    rsps.get(f"{BASE}/credits", json={"credit_balance": 1})
    rsps.get(f"{BASE}/ping", json={"message": "pong"})
    rsps.get(CDN, body=b"video")
    client.create_video(prompt="A tiger")
    client.create_image(prompt="A fox")
    client.upscale(GEN_ID)
    client.add_audio(GEN_ID)
    client.modify_video(media="https://e.com/v.mp4", mode="flex_1")
    client.reframe_video(media="https://e.com/v.mp4", aspect_ratio="1:1")
    client.reframe_image(media="https://e.com/i.jpg", aspect_ratio="1:1")
    client.get(GEN_ID)
    client.list()
    client.delete(GEN_ID)
    client.concepts()
    client.camera_motions()
    client.credits()
    client.ping()
    with client.open_asset(CDN) as asset:
        b"".join(asset.iter_chunks())
    assert len(rsps.calls) == 15
    assert [call.request.req_kwargs["timeout"] for call in rsps.calls] == [TIMEOUT] * 15


def test_the_default_timeouts_are_five_and_thirty_seconds(rsps):
    rsps.get(f"{BASE}/ping", json={"message": "pong"})
    luma.LumaClient(KEY, BASE).ping()
    assert rsps.calls[0].request.req_kwargs["timeout"] == (5.0, 30.0)


# --- assets --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "https://evil.example/video.mp4",
    "https://storage.cdn-luma.com.evil.example/video.mp4",
    "https://storage.cdn-luma.com:8443/video.mp4",
    "http://127.0.0.1:9012/assets/x/video.mp4",
    "http://127.0.0.1/assets/x/video.mp4",
    "ftp://storage.cdn-luma.com/video.mp4",
    "file:///etc/passwd",
    "",
    None,
])
def test_an_asset_outside_the_allow_list_is_refused_before_any_request(client, rsps, url):
    with pytest.raises(luma.LumaAssetHostNotAllowed):
        client.open_asset(url)
    assert len(rsps.calls) == 0


def test_allowed_hosts_match_host_on_default_port_host_port_and_subdomain_wildcards(rsps):
    client = luma.LumaClient(KEY, BASE, allowed_asset_hosts=["STORAGE.cdn-luma.com", "127.0.0.1:9011", "*.lumacdn.test",
                                                             "http://10.0.0.5:8000/"])
    urls = ["https://storage.cdn-luma.com:443/a.mp4", "http://127.0.0.1:9011/assets/a.mp4",
            "https://eu.lumacdn.test/a.mp4", "http://10.0.0.5:8000/a.mp4"]
    for url in urls:
        rsps.get(url, body=b"ok")
        with client.open_asset(url) as asset:
            assert b"".join(asset.iter_chunks()) == b"ok"
    assert len(rsps.calls) == 4


def test_a_whole_asset_streams_in_chunks_without_the_api_key(client, rsps):
    data = bytes(range(256)) * 40
    rsps.get(CDN, body=data, headers={"Content-Length": str(len(data))}, content_type="video/mp4")
    with client.open_asset(CDN) as asset:
        assert (asset.status, asset.resumed, asset.content_length, asset.total_size) == (200, False, len(data),
                                                                                           len(data))
        chunks = list(asset.iter_chunks(chunk_size=4096))
    assert b"".join(chunks) == data and max(len(c) for c in chunks) <= 4096
    (call,) = rsps.calls
    assert "Authorization" not in call.request.headers
    assert "Range" not in call.request.headers
    assert call.request.req_kwargs["stream"] is True


def test_no_authorization_reaches_an_asset_host_even_from_a_session_with_auth(rsps):
    session = requests.Session()
    session.auth = ("user", KEY)
    session.headers["Authorization"] = f"Bearer {KEY}"
    client = luma.LumaClient(KEY, BASE, session=session, allowed_asset_hosts=["storage.cdn-luma.com"])
    rsps.get(CDN, body=b"x")
    with client.open_asset(CDN) as asset:
        list(asset.iter_chunks())
    assert "Authorization" not in rsps.calls[0].request.headers


def test_a_resumed_download_sends_range_and_reads_206(client, rsps):
    rsps.get(CDN, match=[matchers.header_matcher({"Range": "bytes=100-"})], body=b"r" * 900, status=206,
             headers={"Content-Range": "bytes 100-999/1000", "Content-Length": "900"})
    with client.open_asset(CDN, start=100) as asset:
        assert (asset.status, asset.resumed, asset.content_length, asset.total_size) == (206, True, 900, 1000)
        assert b"".join(asset.iter_chunks()) == b"r" * 900


def test_a_server_that_ignores_range_gives_the_whole_file_and_resumed_false(client, rsps):
    rsps.get(CDN, body=b"w" * 1000, headers={"Content-Length": "1000"})
    with client.open_asset(CDN, start=100) as asset:
        assert (asset.status, asset.resumed, asset.total_size) == (200, False, 1000)
    assert rsps.calls[0].request.headers["Range"] == "bytes=100-"


def test_a_range_past_the_end_means_complete_or_start_over(client, rsps):
    rsps.get(CDN, status=416, headers={"Content-Range": "bytes */1000"})
    with client.open_asset(CDN, start=1000) as asset:
        assert (asset.status, asset.resumed, asset.total_size, asset.content_length) == (206, True, 1000, 0)
        assert list(asset.iter_chunks()) == []
    rsps.replace(responses.GET, CDN, status=416, headers={"Content-Range": "bytes */500"})
    rsps.add(responses.GET, CDN, body=b"s" * 500, headers={"Content-Length": "500"})
    with client.open_asset(CDN, start=900) as asset:
        assert (asset.status, asset.resumed, asset.total_size) == (200, False, 500)
    assert "Range" not in rsps.calls[-1].request.headers


def test_a_206_from_the_wrong_offset_is_not_taken_as_a_resume(client, rsps):
    rsps.get(CDN, body=b"x" * 10, status=206, headers={"Content-Range": "bytes 0-9/10"})
    with pytest.raises(luma.LumaError, match="from byte 0, not 5"):
        client.open_asset(CDN, start=5)


@pytest.mark.parametrize("status", [401, 403, 404, 410])
def test_an_expired_asset_link_raises_asset_expired_without_the_hosts_words(client, rsps, status):
    rsps.get(CDN, json={"detail": "Request has expired"}, status=status)
    with pytest.raises(luma.LumaAssetExpired) as caught:
        client.open_asset(CDN)
    assert caught.value.status == status and str(status) in str(caught.value)
    assert "Request has expired" not in str(caught.value) and "Request has expired" not in caught.value.detail
    assert caught.value.retryable is False


@pytest.mark.parametrize(("status", "error"), [(503, luma.LumaServerError), (429, luma.LumaRateLimited)])
def test_other_asset_errors_map_like_api_errors_without_retries(client, rsps, status, error):
    rsps.get(CDN, status=status, headers={"Retry-After": "3"})
    with pytest.raises(error):
        client.open_asset(CDN)
    assert len(rsps.calls) == 1


def test_an_asset_host_that_cannot_be_reached_raises_connection_error(client, rsps):
    rsps.get(CDN, body=refused_error(CDN))
    with pytest.raises(luma.LumaConnectionError):
        client.open_asset(CDN)


def test_an_asset_redirect_is_followed_only_to_an_allowed_host(client, rsps):
    moved = "http://127.0.0.1:9011/assets/d1968551/video.mp4"
    rsps.get(CDN, status=302, headers={"Location": moved})
    rsps.get(moved, match=[matchers.header_matcher({"Range": "bytes=4-"})], body=b"tail", status=206,
             headers={"Content-Range": "bytes 4-7/8"})
    with client.open_asset(CDN, start=4) as asset:
        assert asset.resumed and b"".join(asset.iter_chunks()) == b"tail"
    rsps.replace(responses.GET, CDN, status=302, headers={"Location": "https://evil.example/steal"})
    with pytest.raises(luma.LumaAssetHostNotAllowed):
        client.open_asset(CDN)
    assert [c.request.url for c in rsps.calls] == [CDN, moved, CDN]


# --- settings --------------------------------------------------------------------------------------------------

def test_client_from_settings_reads_key_url_hosts_and_timeouts():
    with override_settings(LUMAAI_API_KEY=KEY, LUMA_BASE_URL="http://127.0.0.1:9011/dream-machine/v1/",
                           LUMA_ASSET_HOSTS=["storage.cdn-luma.com", "127.0.0.1:9011"], LUMA_CONNECT_TIMEOUT=2.0,
                           LUMA_READ_TIMEOUT=9.0):
        client = luma.client_from_settings()
    assert client.base_url == "http://127.0.0.1:9011/dream-machine/v1"
    assert client.allowed_asset_hosts == {"storage.cdn-luma.com", "127.0.0.1:9011"}
    assert client.timeout == (2.0, 9.0)


def test_client_from_settings_without_a_key_says_luma_is_not_configured():
    with override_settings(LUMAAI_API_KEY=""), pytest.raises(luma.LumaNotConfigured) as caught:
        luma.client_from_settings()
    assert isinstance(caught.value, luma.LumaError)
    assert "LUMAAI_API_KEY" in str(caught.value)
