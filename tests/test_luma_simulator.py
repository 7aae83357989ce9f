"""generations.luma against the real simulator process over real HTTP: every endpoint and seed mode, Luma's own
validation texts, 401/402/429, lost answers to creates (sent once), and a resumed asset download."""

import hashlib
import time
from urllib.parse import urlsplit

import pytest

from generations import luma

PROMPT = "A teddy bear in sunglasses playing electric guitar and dancing"


@pytest.fixture
def sim(luma_sim):
    """The simulator with a faster clock: a generation finishes about a quarter of a second after its create."""
    luma_sim.config(time_scale=0.01)
    return luma_sim


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(sim, sleeps):
    with luma.LumaClient(sim.api_key, sim.base_url, timeout=(2.0, 10.0), sleep=sleeps.append,
                         allowed_asset_hosts=[urlsplit(sim.root).netloc]) as client:
        yield client


def completed(client, sim, generation: luma.Generation) -> luma.Generation:
    """Let the simulator's own clock finish it (inputs fetched, moderation passed), then read it through the client."""
    sim.wait_for_state(generation.id, "completed", timeout=15)
    return client.get(generation.id)


@pytest.fixture
def sources(client, sim) -> dict[str, luma.Generation]:
    """A completed image and two completed videos to start from; created together so they finish together."""
    created = {
        "image": client.create_image(prompt="A red fox in a birch forest"),
        "video": client.create_video(prompt=PROMPT),
        "other_video": client.create_video(prompt="A tiger walking in snow"),
    }
    return {name: completed(client, sim, generation) for name, generation in created.items()}


@pytest.fixture
def video(sources) -> luma.Generation:
    return sources["video"]


@pytest.fixture
def other_video(sources) -> luma.Generation:
    return sources["other_video"]


@pytest.fixture
def image(sources) -> luma.Generation:
    return sources["image"]


def download(client, url: str, start: int = 0, stop_after: int | None = None) -> tuple[bytes, luma.AssetResponse]:
    received = bytearray()
    with client.open_asset(url, start=start) as asset:
        for chunk in asset.iter_chunks(64 * 1024):
            received += chunk
            if stop_after is not None and len(received) >= stop_after:
                break
    return bytes(received), asset


# --- reads ------------------------------------------------------------------------------------------------------

def test_ping_credits_concepts_and_camera_motions(client, sim):
    assert client.ping() == "pong"
    assert client.credits() == sim.stats()["credit_balance"] == 100000.0
    concepts = client.concepts()
    assert len(concepts) == 34 and {"dolly_zoom", "handheld", "orbit_left"} <= set(concepts)
    assert "camera orbit left" in client.camera_motions()


def test_a_text_to_video_goes_from_queued_to_completed_and_is_charged(client, sim):
    created = client.create_video(prompt=PROMPT, aspect_ratio="9:16", resolution="720p", duration="5s",
                                  concepts=["dolly_zoom"])
    assert created.state == "queued" and created.kind == "video" and created.model == "ray-2"
    assert created.created_at is not None and created.created_at.tzinfo is not None
    assert created.request["concepts"] == [{"key": "dolly_zoom"}] and created.request["aspect_ratio"] == "9:16"
    assert client.credits() < 100000.0
    done = completed(client, sim, created)
    assert done.state == "completed" and done.failure_reason is None
    assert done.video_url.startswith(f"{sim.root}/assets/{created.id}/") and done.image_url is None


def test_get_list_and_delete(client, sim):
    ids = [client.create_video(prompt=f"{PROMPT} number {n}").id for n in range(3)]
    first = client.list(limit=2)
    assert [g.id for g in first.generations] == ids[:0:-1]  # newest first
    assert (first.count, first.has_more, first.limit, first.offset) == (2, True, 2, 0)
    rest = client.list(limit=2, offset=2)
    assert [g.id for g in rest.generations] == ids[:1] and rest.has_more is False
    assert client.get(ids[0]).id == ids[0]
    assert client.delete(ids[0]) is None
    with pytest.raises(luma.LumaNotFound) as caught:
        client.get(ids[0])
    assert caught.value.detail == "Generation not found"
    with pytest.raises(luma.LumaNotFound):
        client.delete(ids[0])
    assert [g.id for g in client.list(limit=10).generations] == ids[:0:-1]


def test_a_callback_url_is_echoed_and_read_back(client, sim):
    callback = "http://127.0.0.1:9/webhooks/luma/token-abc/"
    created = client.create_video(prompt=PROMPT, callback_url=callback)
    assert created.callback_url == callback
    assert [g.callback_url for g in client.list().generations] == [callback]


# --- every seed mode ------------------------------------------------------------------------------------------

def seed_keyframes(mode: str, image: luma.Generation, video: luma.Generation, other: luma.Generation) -> dict:
    picture = {"type": "image", "url": image.image_url}
    return {
        "start frame": {"frame0": picture},
        "start frame + loop": {"frame0": picture},
        "end frame": {"frame1": picture},
        "start and end frames": {"frame0": picture, "frame1": {"type": "image", "url": image.image_url}},
        "extend": {"frame0": {"type": "generation", "id": video.id}},
        "reverse extend": {"frame1": {"type": "generation", "id": video.id}},
        "interpolate": {"frame0": {"type": "generation", "id": other.id}, "frame1": {"type": "generation", "id": video.id}},
    }[mode]


@pytest.mark.parametrize("mode", ["start frame", "start frame + loop", "end frame", "start and end frames", "extend",
                                  "reverse extend", "interpolate"])
def test_every_seed_mode_is_accepted_and_completes(client, sim, image, video, other_video, mode):
    keyframes = seed_keyframes(mode, image, video, other_video)
    created = client.create_video(prompt=PROMPT, keyframes=keyframes, loop=True if "loop" in mode else None)
    echoed = {slot: frame for slot, frame in created.request["keyframes"].items() if frame is not None}
    assert echoed == keyframes
    assert created.request.get("loop") is (True if "loop" in mode else None)
    done = completed(client, sim, created)  # an image keyframe the simulator could not fetch would fail it
    assert done.video_url


def test_an_image_with_references_completes_as_a_png(client, sim, image):
    created = client.create_image(prompt="The same fox, in winter", format="png", aspect_ratio="1:1",
                                  image_ref=[{"url": image.image_url, "weight": 0.85}],
                                  modify_image_ref={"url": image.image_url, "weight": 0.1})
    assert created.kind == "image" and created.model == "photon-1"
    done = completed(client, sim, created)
    assert done.image_url.endswith(".png") and done.video_url is None


def test_upscale_and_audio_make_new_generations_from_a_completed_video(client, sim, video):
    upscaled = client.upscale(video.id, resolution="1080p")
    with_audio = client.add_audio(video.id, prompt="rain on a tin roof", negative_prompt="music")
    assert len({upscaled.id, with_audio.id, video.id}) == 3
    assert upscaled.request["resolution"] == "1080p" and upscaled.request["generation_type"] == "upscale_video"
    assert with_audio.request["prompt"] == "rain on a tin roof"
    assert completed(client, sim, upscaled).video_url and completed(client, sim, with_audio).video_url


def test_modify_and_reframe(client, sim, video, image):
    modified = client.modify_video(media=video.video_url, mode="reimagine_2", prompt="as a watercolour",
                                   first_frame=image.image_url)
    reframed = client.reframe_video(media=video.video_url, aspect_ratio="1:1", grid_position_x=0, resized_width=240)
    reframed_image = client.reframe_image(media=image.image_url, aspect_ratio="21:9", format="png")
    assert modified.request["mode"] == "reimagine_2" and reframed.request["grid_position_x"] == 0
    assert completed(client, sim, modified).video_url and completed(client, sim, reframed).video_url
    assert completed(client, sim, reframed_image).image_url.endswith(".png")


# --- Luma's validation texts --------------------------------------------------------------------------------

PICTURE = {"type": "image", "url": "https://example.com/frame.jpg"}  # never fetched: the simulator makes no outside calls


@pytest.mark.parametrize(("kwargs", "status", "detail"), [
    ({}, 400, "Prompt is required"),
    ({"prompt": "hi"}, 400, "Prompt is too short, minimum length is 3 characters"),
    ({"prompt": "x" * 5001}, 400, "Prompt is too long, maximum length is 5000 characters"),
    ({"prompt": PROMPT, "loop": True, "keyframes": {"frame1": PICTURE}}, 400, "Loop is not supported for end frame"),
    ({"prompt": PROMPT, "loop": True, "keyframes": {"frame0": PICTURE, "frame1": PICTURE}}, 400,
     "Loop is not supported for keyframes"),
    ({"prompt": PROMPT, "model": "ray-flash-2", "concepts": ["dolly_zoom"]}, 400,
     "concepts are not supported for this model"),
    ({"prompt": PROMPT, "concepts": ["moonwalk"]}, 400, "Unknown concept: moonwalk"),
    ({"prompt": PROMPT, "model": "ray-9"}, 422, "model: Input should be 'ray-2' or 'ray-flash-2'"),
    ({"prompt": PROMPT, "keyframes": {"frame0": {"type": "image"}}}, 422, "keyframes.frame0.image.url: Field required"),
])
def test_lumas_validation_messages_surface_as_rejected_detail(client, sim, kwargs, status, detail):
    with pytest.raises(luma.LumaRejected) as caught:
        client.create_video(**kwargs)
    assert (caught.value.status, caught.value.detail) == (status, detail)
    assert detail in str(caught.value)
    assert sim.generations() == []


def test_loops_on_extend_reverse_and_interpolate_are_rejected(client, sim, video, other_video):
    reverse = {"frame1": {"type": "generation", "id": video.id}}
    both = {"frame0": {"type": "generation", "id": other_video.id}, "frame1": {"type": "generation", "id": video.id}}
    for keyframes, detail in ((reverse, "Loop is not supported for extend reverse"),
                              (both, "Loop is not supported for interpolate between two videos")):
        with pytest.raises(luma.LumaRejected) as caught:
            client.create_video(prompt=PROMPT, loop=True, keyframes=keyframes)
        assert caught.value.detail == detail


def test_sources_that_cannot_be_used_are_rejected_with_lumas_reason(client, sim, image):
    queued = client.create_video(prompt=PROMPT)
    missing = "00000000-0000-4000-8000-000000000000"
    cases = [
        (lambda: client.upscale(queued.id), luma.LumaRejected, f"Generation {queued.id} is not completed"),
        (lambda: client.add_audio(image.id), luma.LumaRejected, f"Generation {image.id} is not a video"),
        (lambda: client.create_video(prompt=PROMPT, keyframes={"frame0": {"type": "generation", "id": missing}}),
         luma.LumaRejected, f"Generation {missing} not found"),
        (lambda: client.upscale(missing), luma.LumaNotFound, "Generation not found"),
        (lambda: client.create_image(prompt="five refs", image_ref=[{"url": image.image_url}] * 5),
         luma.LumaRejected, "image_ref supports at most 4 images"),
    ]
    for call, error, detail in cases:
        with pytest.raises(error) as caught:
            call()
        assert caught.value.detail == detail


# --- keys, credit, limits ---------------------------------------------------------------------------------------

def test_a_wrong_key_is_refused_with_401_and_the_right_one_works(sim):
    sim.config(api_keys=["luma-the-right-key"])
    wrong = luma.LumaClient("luma-the-wrong-key", sim.base_url)
    with pytest.raises(luma.LumaAuthError) as caught:
        wrong.credits()
    assert caught.value.status == 401 and caught.value.detail == "Invalid API key"
    assert "luma-the-wrong-key" not in str(caught.value)
    with pytest.raises(luma.LumaAuthError):
        wrong.create_video(prompt=PROMPT)
    assert luma.LumaClient("luma-the-right-key", sim.base_url).ping() == "pong"


def test_a_create_beyond_the_balance_is_refused_as_payment(client, sim):
    sim.config(credits=1)
    with pytest.raises(luma.LumaPaymentError) as caught:
        client.create_video(prompt=PROMPT)
    assert (caught.value.status, caught.value.detail) == (402, "Insufficient credits")
    assert sim.generations() == []


def test_a_create_over_the_concurrency_limit_raises_rate_limited_with_retry_after(client, sim):
    sim.config(concurrent_limit=1, time_scale=1)
    client.create_video(prompt=PROMPT)
    with pytest.raises(luma.LumaRateLimited) as caught:
        client.create_video(prompt=PROMPT)
    assert caught.value.status == 429 and caught.value.retry_after >= 1
    assert caught.value.detail.startswith("Too many concurrent generations: at most 1 ray generations")
    assert len(sim.generations()) == 1


def test_a_create_over_the_per_minute_limit_raises_rate_limited(client, sim):
    sim.config(creates_per_minute=1)
    client.create_video(prompt=PROMPT)
    with pytest.raises(luma.LumaRateLimited) as caught:
        client.create_video(prompt=PROMPT)
    assert 1 <= caught.value.retry_after <= 60
    assert caught.value.detail == "Rate limit exceeded: at most 1 create requests per minute for ray models"


def test_reads_ride_out_429_bursts_and_5xx_but_give_up_after_three_attempts(client, sim, sleeps):
    created = client.create_video(prompt=PROMPT)
    sim.faults(burst_429=1)
    assert client.get(created.id).id == created.id
    assert sleeps == [1.0]  # the simulator's Retry-After
    sim.faults(get_5xx=2)
    assert client.get(created.id).id == created.id
    sim.faults(burst_429=3)
    with pytest.raises(luma.LumaRateLimited) as caught:
        client.get(created.id)
    assert caught.value.retry_after == 1.0
    assert sim.stats()["requests"]["GET /generations/{id}"] == 2 + 3 + 3


# --- creates whose answer is lost are never resent ------------------------------------------------------------

def test_a_create_whose_connection_drops_is_sent_once_and_can_be_found_by_listing(client, sim):
    token = "drop-token-7"
    sim.faults(drop_after_create=1)
    with pytest.raises(luma.LumaOutcomeUnknown) as caught:
        client.create_video(prompt=PROMPT, callback_url=f"http://127.0.0.1:9/webhooks/luma/{token}/")
    assert caught.value.maybe_created and not caught.value.retryable
    assert sim.creates(token)["attempts"] == 1 and sim.creates(token)["count"] == 1  # created, and billed, once
    found = [g for g in client.list().generations if token in (g.callback_url or "")]
    assert [g.id for g in found] == sim.creates(token)["ids"]


def test_a_create_without_an_answer_in_time_is_sent_once(sim, sleeps):
    sim.faults(slow_responses=0.6)
    impatient = luma.LumaClient(sim.api_key, sim.base_url, timeout=(2.0, 0.2), sleep=sleeps.append)
    with pytest.raises(luma.LumaOutcomeUnknown):
        impatient.create_video(prompt=PROMPT, callback_url="http://127.0.0.1:9/webhooks/luma/slow-token/")
    with pytest.raises(luma.LumaTimeout):
        impatient.ping()
    time.sleep(0.6)  # let the simulator finish the slow create before counting
    assert sim.creates("slow-token")["attempts"] == 1
    assert sim.stats()["requests"]["GET /ping"] == 3 and len(sleeps) == 2


# --- assets ---------------------------------------------------------------------------------------------------

def test_an_asset_download_resumed_with_range_concatenates_to_the_whole_file(client, sim):
    sim.config(asset_bytes=3_000_000)
    done = completed(client, sim, client.create_video(prompt=PROMPT))
    described = next(g for g in sim.generations() if g["id"] == done.id)
    first, whole = download(client, done.video_url, stop_after=1_000_000)
    assert whole.status == 200 and whole.resumed is False and whole.total_size == described["asset_bytes"]
    rest, resumed = download(client, done.video_url, start=len(first))
    assert resumed.status == 206 and resumed.resumed is True
    assert resumed.total_size == described["asset_bytes"] and resumed.content_length == len(rest)
    assert len(first) + len(rest) == described["asset_bytes"]
    assert hashlib.sha256(first + rest).hexdigest() == described["sha256"]


def test_a_download_cut_off_midway_raises_and_resumes_to_the_right_bytes(client, sim):
    sim.config(asset_bytes=300_000)
    video = completed(client, sim, client.create_video(prompt=PROMPT))
    sim.faults(cut_downloads=1)
    received = bytearray()
    with pytest.raises(luma.LumaConnectionError):
        with client.open_asset(video.video_url) as asset:
            for chunk in asset.iter_chunks(4096):
                received += chunk
    assert 0 < len(received) < asset.total_size
    rest, resumed = download(client, video.video_url, start=len(received))
    expected = next(g for g in sim.generations() if g["id"] == video.id)["sha256"]
    assert resumed.resumed and hashlib.sha256(bytes(received) + rest).hexdigest() == expected


def test_an_expired_asset_link_raises_and_a_fresh_one_from_get_works(client, sim):
    sim.faults(expire_asset_urls=0.3)
    done = completed(client, sim, client.create_video(prompt=PROMPT))
    time.sleep(0.4)
    with pytest.raises(luma.LumaAssetExpired) as caught:
        download(client, done.video_url)
    # The asset host's own words are never repeated (they could be anything a forged URL's host answers).
    assert caught.value.status == 403 and "Request has expired" not in str(caught.value)
    with pytest.raises(luma.LumaAssetExpired, match="403"):
        download(client, done.video_url.replace("sig=", "sig=0"))
    fresh = client.get(done.id).video_url
    data, answer = download(client, fresh)
    assert answer.status == 200 and len(data) == answer.total_size


def test_an_asset_host_outside_the_allow_list_is_never_contacted(sim, video):
    strict = luma.LumaClient(sim.api_key, sim.base_url, allowed_asset_hosts=["storage.cdn-luma.com"])
    before = sim.stats()["assets"].get("requests", 0)
    with pytest.raises(luma.LumaAssetHostNotAllowed):
        strict.open_asset(video.video_url)
    assert sim.stats()["assets"].get("requests", 0) == before
